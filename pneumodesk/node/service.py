"""``NodeService``: the one front door to the hospital node's state (store, accounts, audit, clinical actions,
datasets, policy, approvals, privacy ledger, federation membership, recognised peers, egress log, local models)."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

from .accounts import AccountService
from .approvals import ApprovalService
from .audit import AuditLog, AuditRecord, ChainReport, verify_chain, write_audit_csv
from .clinical import ClinicalService
from .confirmed_cases import ConfirmedCases
from .datasets import DatasetService
from .egress import EgressLog
from .ledger import PrivacyLedger
from .membership import FederationMembership
from .model_registry import LocalModelRegistry
from .permissions import Permission
from .policy import PolicyService
from .readings import ReadingService
from .recognised_peers import RecognisedPeers
from .session import UserSession
from .store import STORE_FILE, NodeStore, resolve_home


class NodeService:
    def __init__(self, store: NodeStore, default_bundle: Path | None = None) -> None:
        """``default_bundle``: the model registered as local model 1 (default: the bundled default model)."""
        self.store = store
        self.home = store.path.parent
        self.audit = AuditLog(store)
        self.accounts = AccountService(store, self.audit)
        self.clinical = ClinicalService(self.accounts, self.audit)
        self.datasets = DatasetService(store, self.accounts, self.audit)
        self.policy = PolicyService(store, self.accounts, self.audit)
        self.ledger = PrivacyLedger(store, self.audit)
        self.approvals = ApprovalService(store, self.accounts, self.audit, self.policy, self.ledger)
        self.membership = FederationMembership(store, self.accounts, self.audit)
        self.peers = RecognisedPeers(store, self.accounts, self.audit)
        self.egress = EgressLog(store, self.accounts, self.audit)
        self.models = LocalModelRegistry(store, self.accounts, self.audit, self.home, default_bundle)
        self.readings = ReadingService(store, self.accounts, self.audit)
        self.confirmed_cases = ConfirmedCases(self.readings, self.datasets, self.accounts)

    @classmethod
    def open(cls, home: str | os.PathLike[str] | None = None, default_bundle: Path | None = None) -> NodeService:
        """Open (creating or migrating as needed) the store in the app home."""
        return cls(NodeStore(resolve_home(home) / STORE_FILE), default_bundle)

    def read_audit(self, actor: UserSession, user: str | None = None, action: str | None = None,
                   since: dt.datetime | None = None, until: dt.datetime | None = None,
                   limit: int | None = None) -> list[AuditRecord]:
        self.accounts.require(actor, Permission.VIEW_AUDIT)
        return self.audit.read(user, action, since, until, limit)

    def export_audit_csv(self, actor: UserSession, path: Path, records: list[AuditRecord]) -> Path:
        """Write the given (already permitted) records as CSV; the export itself is audited."""
        self.accounts.require(actor, Permission.VIEW_AUDIT, "audit_csv")
        written = write_audit_csv(records, path)
        self.audit.append(actor.username, "export", "audit_csv", details={"count": len(records)})
        return written

    def verify_audit(self) -> ChainReport:
        """No permission needed: it reveals only whether the chain is intact."""
        return verify_chain(self.store)

    def close(self) -> None:
        self.store.close()
