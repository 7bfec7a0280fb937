"""The tamper-evident audit log: append-only, hash-chained entries in the node store (DESIGN invariant 8).

Each entry's hash is ``sha256(prev_hash + "\\n" + canonical JSON of id, time, user, action, target, outcome,
details)``; the first entry follows ``GENESIS``. ``audit_head`` holds the last id, hash and entry count, updated in
the same transaction as every append. ``verify_chain`` therefore detects an edited entry, a deleted one (also at the
end), and reordered ones, including edits made directly in the SQLite file.

Limits, stated plainly: someone who can write the file and recomputes *every* later hash and the head can forge a
consistent chain; anchoring the head outside the file (keyring, coordinator) is what would stop that.

Details must be flat JSON scalars and never carry patient data, images, file names or paths, passwords or hashes.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from pneumodesk.csv_cells import defused_row

from .models import AuditEntry, AuditHead
from .store import NodeStore

GENESIS = "0" * 64
OK, DENIED, FAILED = "ok", "denied", "failed"
Scalar = str | int | float | bool | None


def canonical_json(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def entry_hash(prev_hash: str, fields: Mapping[str, object]) -> str:
    return hashlib.sha256((prev_hash + "\n" + canonical_json(fields)).encode("utf-8")).hexdigest()


def _hashed_fields(row: AuditEntry) -> dict[str, object]:
    return {
        "id": row.id, "time": row.time, "user": row.username, "action": row.action, "target": row.target,
        "outcome": row.outcome, "details": row.details,
    }


@dataclass(frozen=True)
class AuditRecord:
    """An audit entry as read back (details decoded)."""

    id: int
    time: str
    user: str
    action: str
    target: str
    outcome: str
    details: dict[str, Scalar]

    @classmethod
    def of(cls, row: AuditEntry) -> AuditRecord:
        return cls(row.id, row.time, row.username, row.action, row.target, row.outcome, json.loads(row.details))


@dataclass(frozen=True)
class ChainReport:
    """Result of ``verify_chain``: ``first_bad_id`` is None when the chain is intact."""

    checked: int
    first_bad_id: int | None = None
    problem: str = ""

    @property
    def intact(self) -> bool:
        return self.first_bad_id is None


class AuditLog:
    """Appends entries; reading with a permission check lives in ``NodeService`` (view_audit)."""

    def __init__(self, store: NodeStore) -> None:
        self.store = store

    def append(self, user: str, action: str, target: str = "", outcome: str = OK,
               details: Mapping[str, Scalar] | None = None) -> int:
        """Write one entry, chained to the last one, in its own transaction; returns its id once committed."""
        with self.store.session() as session:
            return self.append_in(session, user, action, target, outcome, details)

    def append_in(self, session: Session, user: str, action: str, target: str = "", outcome: str = OK,
                  details: Mapping[str, Scalar] | None = None) -> int:
        """Add one entry to ``session``'s transaction, so it commits (or rolls back) together with the change it
        records; returns its id. The entry exists only once the caller's transaction commits."""
        clean = {str(k): v for k, v in (details or {}).items()}
        for key, value in clean.items():
            if not isinstance(value, str | int | float | bool | type(None)):
                raise TypeError(f"audit detail {key!r} must be a plain value, not {type(value).__name__}")
        head = session.get(AuditHead, 1)
        if head is None:
            raise RuntimeError("the audit log's head record is missing: run `pneumodesk audit verify`")
        row = AuditEntry(
            id=head.last_id + 1, time=dt.datetime.now(dt.UTC).isoformat(timespec="microseconds"),
            username=user, action=action, target=target[:128], outcome=outcome, details=canonical_json(clean),
            prev_hash=head.last_hash, entry_hash="",
        )
        row.entry_hash = entry_hash(head.last_hash, _hashed_fields(row))
        session.add(row)
        head.last_id, head.last_hash, head.count = row.id, row.entry_hash, head.count + 1
        return row.id

    def read(self, user: str | None = None, action: str | None = None, since: dt.datetime | None = None,
             until: dt.datetime | None = None, limit: int | None = None) -> list[AuditRecord]:
        """Entries (newest first) matching every given filter. No permission check: callers must do it."""
        query = select(AuditEntry).order_by(AuditEntry.id.desc())
        if user:
            query = query.where(AuditEntry.username == user)
        if action:
            query = query.where(AuditEntry.action == action)
        if since is not None:
            query = query.where(AuditEntry.time >= since.astimezone(dt.UTC).isoformat(timespec="microseconds"))
        if until is not None:
            query = query.where(AuditEntry.time <= until.astimezone(dt.UTC).isoformat(timespec="microseconds"))
        if limit is not None:
            query = query.limit(limit)
        with self.store.session() as session:
            return [AuditRecord.of(row) for row in session.scalars(query)]

    def actions(self) -> list[str]:
        with self.store.session() as session:
            return sorted(session.scalars(select(AuditEntry.action).distinct()))


def verify_chain(store: NodeStore) -> ChainReport:
    """Walk the whole chain in id order and report the first entry that is not what was appended."""
    expected_prev, checked, last_id = GENESIS, 0, 0
    with store.session() as session:
        for row in session.scalars(select(AuditEntry).order_by(AuditEntry.id)):
            if row.id != last_id + 1:
                return ChainReport(checked, last_id + 1, f"entry {last_id + 1} is missing (deleted)")
            if row.prev_hash != expected_prev:
                return ChainReport(checked, row.id, f"entry {row.id} does not follow the entry before it "
                                                    "(an entry was deleted, inserted or reordered)")
            if entry_hash(row.prev_hash, _hashed_fields(row)) != row.entry_hash:
                return ChainReport(checked, row.id, f"entry {row.id} was changed after it was written")
            expected_prev, last_id, checked = row.entry_hash, row.id, checked + 1
        head = session.get(AuditHead, 1)
        if head is None:
            return ChainReport(checked, last_id + 1, "the audit log's head record was deleted")
        if head.count != checked or head.last_id != last_id or head.last_hash != expected_prev:
            first = min(last_id, head.last_id) + 1 if head.last_id != last_id else last_id or 1
            return ChainReport(checked, first, f"the log ends at entry {last_id} but entry {head.last_id} was "
                                               f"the last written ({head.count} entries): entries were deleted")
    return ChainReport(checked)


CSV_COLUMNS = ("id", "time", "user", "action", "target", "outcome", "details")


def write_audit_csv(records: list[AuditRecord], path: Path) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(CSV_COLUMNS)
        for r in records:
            cells = [r.id, r.time, r.user, r.action, r.target, r.outcome, canonical_json(r.details)]
            writer.writerow(defused_row(cells))
    return path
