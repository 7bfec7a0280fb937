"""``NodeService``: the one front door to the hospital node's state (store, accounts, audit, clinical actions)."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

from .accounts import AccountService
from .audit import AuditLog, AuditRecord, ChainReport, verify_chain, write_audit_csv
from .clinical import ClinicalService
from .permissions import Permission
from .session import UserSession
from .store import STORE_FILE, NodeStore, resolve_home


class NodeService:
    def __init__(self, store: NodeStore) -> None:
        self.store = store
        self.audit = AuditLog(store)
        self.accounts = AccountService(store, self.audit)
        self.clinical = ClinicalService(self.accounts, self.audit)

    @classmethod
    def open(cls, home: str | os.PathLike[str] | None = None) -> NodeService:
        """Open (creating or migrating as needed) the store in the app home."""
        return cls(NodeStore(resolve_home(home) / STORE_FILE))

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
