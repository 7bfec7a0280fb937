"""The egress log: one row per request this node sent to its coordinator ("what left this machine").

Invariants: append-only (SQLite triggers refuse UPDATE and DELETE); rows carry the endpoint path without its query
string, byte counts, the HTTP status and a purpose word — never a body, header, token or file name. Recording is
the client transport's job (no actor); reading and exporting need ``manage_federation`` or ``view_audit``.
"""

from __future__ import annotations

import csv
import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select

from pneumodesk.csv_cells import defused_row

from .accounts import AccountService
from .audit import AuditLog
from .models import EgressRow, utcnow
from .permissions import Permission
from .session import UserSession
from .store import NodeStore

READERS = (Permission.MANAGE_FEDERATION, Permission.VIEW_AUDIT)
CSV_COLUMNS = ("id", "time", "method", "endpoint", "bytes_sent", "bytes_received", "status", "purpose")


@dataclass(frozen=True)
class EgressRecord:
    id: int
    time: dt.datetime
    method: str
    endpoint: str
    bytes_sent: int
    bytes_received: int
    status: int | None
    purpose: str


class EgressLog:
    def __init__(self, store: NodeStore, accounts: AccountService, audit: AuditLog) -> None:
        self.store = store
        self.accounts = accounts
        self.audit = audit

    def record(self, method: str, endpoint: str, bytes_sent: int, bytes_received: int, status: int | None,
               purpose: str) -> None:
        """One request sent (called by the client's single ``send()``); a query string is cut off."""
        path = endpoint.split("?", 1)[0].split("#", 1)[0]
        with self.store.session() as session:
            session.add(EgressRow(time=utcnow(), method=method.upper()[:8], endpoint=path, bytes_sent=int(bytes_sent),
                                  bytes_received=int(bytes_received), status=None if status is None else int(status),
                                  purpose=purpose[:64]))

    def read(self, actor: UserSession, limit: int | None = None) -> list[EgressRecord]:
        """Newest first."""
        self.accounts.require_any(actor, READERS, "egress_log")
        query = select(EgressRow).order_by(EgressRow.id.desc())
        if limit is not None:
            query = query.limit(limit)
        with self.store.session() as session:
            return [EgressRecord(r.id, r.time, r.method, r.endpoint, r.bytes_sent, r.bytes_received, r.status,
                                 r.purpose) for r in session.scalars(query)]

    def export_csv(self, actor: UserSession, path: Path) -> Path:
        """Write the whole log (oldest first) as CSV; the export is audited (the file's name is not recorded)."""
        records = list(reversed(self.read(actor)))
        with Path(path).open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(CSV_COLUMNS)
            for r in records:
                writer.writerow(defused_row([r.id, r.time.isoformat(), r.method, r.endpoint, r.bytes_sent,
                                             r.bytes_received, "" if r.status is None else r.status, r.purpose]))
        self.audit.append(actor.username, "export", "egress_csv", details={"count": len(records)})
        return Path(path)

    def totals(self) -> dict[str, int]:
        """``{"requests", "bytes_sent", "bytes_received"}`` over the whole log (no actor: figures only)."""
        query = select(func.count(), func.sum(EgressRow.bytes_sent), func.sum(EgressRow.bytes_received))
        with self.store.session() as session:
            requests, sent, received = session.execute(query).one()
        return {"requests": int(requests or 0), "bytes_sent": int(sent or 0), "bytes_received": int(received or 0)}
