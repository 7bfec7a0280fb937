"""Peers this hospital's admin recognised: other nodes' identity-key fingerprints pinned with a name, audited.

Invariants: recognising or forgetting a peer needs ``manage_federation`` and is audited (fingerprint, name, node id);
listing needs only a signed-in session (it reveals no secret). A fingerprint is kept in one canonical form — the 40
lower-case hex digits of ``federation.secagg.roster_rules.key_fingerprint`` without spaces — so the same key typed
with or without grouping is one peer. The policy's ``min_recognised_peers`` counts roster peers whose key is here.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from sqlalchemy import select

from .accounts import AccountService
from .audit import AuditLog
from .errors import RecognisedPeerError
from .models import RecognisedPeerRow, utcnow
from .permissions import Permission
from .session import UserSession
from .store import NodeStore

_HEX40 = re.compile(r"[0-9a-f]{40}")


def canonical_fingerprint(text: str) -> str:
    """``text`` (grouped or not, any case, ``:`` or spaces between groups) as 40 lower-case hex digits."""
    compact = re.sub(r"[\s:]", "", text).lower()
    if not _HEX40.fullmatch(compact):
        raise RecognisedPeerError(f"{text!r} is not a key fingerprint (40 hexadecimal digits, as PneumoDesk shows "
                                  "them).")
    return compact


@dataclass(frozen=True)
class RecognisedPeer:
    fingerprint: str  # canonical form
    name: str
    node_id: str
    recognised_at: dt.datetime
    recognised_by: str


class RecognisedPeers:
    def __init__(self, store: NodeStore, accounts: AccountService, audit: AuditLog) -> None:
        self.store = store
        self.accounts = accounts
        self.audit = audit

    def list(self) -> list[RecognisedPeer]:
        with self.store.session() as session:
            rows = session.scalars(select(RecognisedPeerRow).order_by(RecognisedPeerRow.name)).all()
            return [RecognisedPeer(row.fingerprint, row.name, row.node_id, row.recognised_at, row.recognised_by)
                    for row in rows]

    def fingerprints(self) -> frozenset[str]:
        return frozenset(peer.fingerprint for peer in self.list())

    def recognise(self, actor: UserSession, fingerprint: str, name: str, node_id: str = "") -> RecognisedPeer:
        """Pin ``fingerprint`` as the key of the hospital called ``name`` (renames it when already pinned)."""
        self.accounts.require(actor, Permission.MANAGE_FEDERATION, "recognised_peers")
        canonical, name = canonical_fingerprint(fingerprint), name.strip()
        if not name:
            raise RecognisedPeerError("Give the hospital's name, as its admin told it to you.")
        with self.store.session() as session:
            row = session.get(RecognisedPeerRow, canonical) or RecognisedPeerRow(fingerprint=canonical)
            row.name, row.node_id, row.recognised_at, row.recognised_by = name[:128], node_id[:128], utcnow(), \
                actor.username
            session.add(row)
            peer = RecognisedPeer(canonical, row.name, row.node_id, row.recognised_at, row.recognised_by)
        self.audit.append(actor.username, "peer_recognised", canonical,
                          details={"name": peer.name, "node_id": peer.node_id})
        return peer

    def forget(self, actor: UserSession, fingerprint: str) -> None:
        self.accounts.require(actor, Permission.MANAGE_FEDERATION, "recognised_peers")
        canonical = canonical_fingerprint(fingerprint)
        with self.store.session() as session:
            row = session.get(RecognisedPeerRow, canonical)
            if row is None:
                raise RecognisedPeerError("No recognised peer has that key fingerprint.")
            name = row.name
            session.delete(row)
        self.audit.append(actor.username, "peer_forgotten", canonical, details={"name": name})
