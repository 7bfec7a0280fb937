"""Clinical readings: after agreeing or disagreeing with the model, a clinician records what they read on the image
(normal, pneumonia or unsure), kept by the image's content digest with the path it was read from.

Invariants: one reading per digest (a new reading replaces the old one); ``unsure`` is kept (so the clinician's
keystroke is not lost) but never becomes a label; the audit log records that a reading was recorded and how many,
never the image, its digest, its path or the reading itself.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from sqlalchemy import delete, select

from .accounts import AccountService
from .audit import AuditLog
from .models import ClinicalReadingRow, utcnow
from .permissions import Permission
from .session import UserSession
from .store import NodeStore

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class Reading(StrEnum):
    """What the clinician read on the image. Stored by value."""

    NORMAL = "normal"
    PNEUMONIA = "pneumonia"
    UNSURE = "unsure"  # recorded, never a label

    @property
    def label(self) -> int | None:
        """0 normal, 1 pneumonia, None for unsure."""
        return {Reading.NORMAL: 0, Reading.PNEUMONIA: 1}.get(self)


@dataclass(frozen=True)
class ClinicalReading:
    digest: str
    reading: Reading
    path: Path
    recorded_at: dt.datetime
    recorded_by: str


class ReadingService:
    """Recording and clearing need ``review``; reading them back is for the node's own services (no actor)."""

    def __init__(self, store: NodeStore, accounts: AccountService, audit: AuditLog) -> None:
        self.store = store
        self.accounts = accounts
        self.audit = audit

    def record(self, actor: UserSession, digest: str, path: Path, reading: Reading | str | None) -> None:
        """Keep ``reading`` for the image with content ``digest`` read from ``path`` (``None`` forgets it); the
        reading and its audit entry are written in one transaction."""
        self.accounts.require(actor, Permission.REVIEW, "reading")
        if not _SHA256.match(digest):
            raise ValueError("a reading is kept by the image's sha256 (64 lower-case hex digits)")
        chosen = Reading(reading) if reading is not None else None
        with self.store.session() as session:
            if chosen is None:
                removed = session.execute(delete(ClinicalReadingRow).where(ClinicalReadingRow.digest == digest))
                self.audit.append_in(session, actor.username, "reading_cleared", "image",
                                     details={"count": int(getattr(removed, "rowcount", 0) or 0)})
                return
            row = session.get(ClinicalReadingRow, digest)
            if row is None:
                session.add(ClinicalReadingRow(digest=digest, reading=chosen.value, path=str(Path(path).resolve()),
                                               recorded_at=utcnow(), recorded_by=actor.username))
            else:
                row.reading, row.path = chosen.value, str(Path(path).resolve())
                row.recorded_at, row.recorded_by = utcnow(), actor.username
            self.audit.append_in(session, actor.username, "reading_recorded", "image", details={"count": 1})

    def get(self, digest: str) -> Reading | None:
        with self.store.session() as session:
            row = session.get(ClinicalReadingRow, digest)
            return Reading(row.reading) if row is not None else None

    def all(self, since: dt.datetime | None = None) -> list[ClinicalReading]:
        """Every reading (recorded at or after ``since`` when given), oldest first."""
        query = select(ClinicalReadingRow).order_by(ClinicalReadingRow.recorded_at, ClinicalReadingRow.digest)
        if since is not None:
            query = query.where(ClinicalReadingRow.recorded_at >= since)
        with self.store.session() as session:
            return [ClinicalReading(r.digest, Reading(r.reading), Path(r.path), r.recorded_at, r.recorded_by)
                    for r in session.scalars(query)]

    def confirmed(self, since: dt.datetime | None = None) -> list[ClinicalReading]:
        """The readings that are labels (normal or pneumonia; never unsure)."""
        return [r for r in self.all(since) if r.reading.label is not None]

    def counts(self) -> dict[Reading, int]:
        found = {reading: 0 for reading in Reading}
        for r in self.all():
            found[r.reading] += 1
        return found
