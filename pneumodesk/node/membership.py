"""This node's membership of one federation: coordinator address, the pinned CA, its node id and approval state.

Invariants: at most one membership at a time (one row); enrolment and leaving need ``manage_federation`` and are
audited; the status changes the client observes (pending → approved, or revoked) are audited as the system actor.
The CA certificate itself is a file under ``home/federation/`` written by the client; its sha256 is kept here so a
swapped file is noticed.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from pneumodesk.federation.vocabulary import MembershipStatus

from .accounts import AccountService
from .audit import AuditLog
from .errors import MembershipError
from .ledger import SYSTEM_ACTOR
from .models import MembershipRow
from .permissions import Permission
from .session import UserSession
from .store import NodeStore

STATUSES: tuple[str, ...] = tuple(MembershipStatus)


@dataclass(frozen=True)
class Membership:
    coordinator_url: str
    federation: str  # the coordinator's token audience
    node_id: str
    node_name: str
    ca_pem_sha256: str
    ca_path: Path  # normally home/federation/ca.pem
    status: MembershipStatus
    enrolled_at: dt.datetime


class FederationMembership:
    def __init__(self, store: NodeStore, accounts: AccountService, audit: AuditLog) -> None:
        self.store = store
        self.accounts = accounts
        self.audit = audit

    def get(self) -> Membership | None:
        with self.store.session() as session:
            row = session.get(MembershipRow, 1)
            if row is None:
                return None
            return Membership(row.coordinator_url, row.federation, row.node_id, row.node_name, row.ca_pem_sha256,
                              Path(row.ca_path), row.status, row.enrolled_at)  # type: ignore[arg-type]

    def save(self, actor: UserSession, membership: Membership) -> None:
        """Record (or replace) the membership after enrolment."""
        self.accounts.require(actor, Permission.MANAGE_FEDERATION, "federation")
        if membership.status not in STATUSES:
            raise MembershipError(f"Unknown membership status {membership.status!r}.")
        with self.store.session() as session:
            row = session.get(MembershipRow, 1) or MembershipRow(id=1)
            row.coordinator_url, row.federation = membership.coordinator_url, membership.federation
            row.node_id, row.node_name = membership.node_id, membership.node_name
            row.ca_pem_sha256, row.ca_path = membership.ca_pem_sha256, str(membership.ca_path)
            row.status, row.enrolled_at = membership.status, membership.enrolled_at
            session.add(row)
        self.audit.append(actor.username, "federation_enrolled", membership.federation, details={
            "coordinator_url": membership.coordinator_url, "node_id": membership.node_id,
            "ca_pem_sha256": membership.ca_pem_sha256, "status": membership.status,
        })

    def set_status(self, status: MembershipStatus) -> None:
        """The coordinator's answer about this node (client only); audited when it changes."""
        if status not in STATUSES:
            raise MembershipError(f"Unknown membership status {status!r}.")
        with self.store.session() as session:
            row = session.get(MembershipRow, 1)
            if row is None:
                raise MembershipError("This node is not enrolled with a federation.")
            previous, row.status = row.status, status
            federation = row.federation
        if previous != status:
            self.audit.append(SYSTEM_ACTOR, "federation_status", federation,
                              details={"from": previous, "to": status})

    def leave(self, actor: UserSession) -> None:
        """Forget the membership (the node stops taking part); the CA file is left for the client to remove."""
        self.accounts.require(actor, Permission.MANAGE_FEDERATION, "federation")
        with self.store.session() as session:
            row = session.get(MembershipRow, 1)
            if row is None:
                raise MembershipError("This node is not enrolled with a federation.")
            federation = row.federation
            session.delete(row)
        self.audit.append(actor.username, "federation_left", federation)
