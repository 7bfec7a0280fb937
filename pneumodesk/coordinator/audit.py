"""The coordinator's audit log: who did what, when — operator logins, enrolment codes, node decisions, plans, models.

Invariants: entries are only ever appended (the database refuses UPDATE and DELETE on the table, see migration
0002); an entry is written in the same transaction as the action it records, so an action without its entry (or the
reverse) cannot be committed; entries never hold a secret (no password, token, enrolment code or key — at most the id
or hash of the thing acted on), and never say which node sent which update.

Actors: an operator's user name; ``local:<os user>`` for the command line (whoever can run it owns the folder);
``node:<id>`` for a node enrolling itself; ``system`` for the coordinator.
"""

from __future__ import annotations

import getpass
import json
from typing import Any

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from .db import AuditRecord, utcnow

SYSTEM = "system"


class AuditEntry(BaseModel):
    id: int
    at: str
    actor: str
    action: str
    target: str | None = None
    details: dict[str, Any] | None = None


def local_actor() -> str:
    """The actor name for commands run on the coordinator's machine."""
    try:
        return f"local:{getpass.getuser()}"
    except (KeyError, OSError):
        return "local:unknown"


class AuditLog:
    def __init__(self, sessions: sessionmaker) -> None:
        self._sessions = sessions

    @staticmethod
    def add(session: Session, actor: str, action: str, target: str | None = None,
            details: dict[str, Any] | None = None) -> None:
        """Stage an entry in ``session``; it commits (or not) with the action it records."""
        session.add(AuditRecord(at=utcnow(), actor=actor[:160], action=action, target=None if target is None
                                else str(target)[:200], details=json.dumps(details, sort_keys=True) if details
                                else None))

    def append(self, actor: str, action: str, target: str | None = None,
               details: dict[str, Any] | None = None) -> None:
        """Record an action that has no transaction of its own (e.g. a login, a model export)."""
        with self._sessions() as session:
            self.add(session, actor, action, target, details)
            session.commit()

    def read(self, limit: int | None = None, after_id: int = 0) -> list[AuditEntry]:
        """Entries oldest first; with ``limit``, the newest ``limit`` of those after ``after_id``."""
        with self._sessions() as session:
            query = select(AuditRecord).where(AuditRecord.id > after_id).order_by(AuditRecord.id.desc())
            if limit is not None:
                query = query.limit(limit)
            rows = list(reversed(session.scalars(query).all()))
        return [AuditEntry(id=r.id, at=r.at.isoformat(), actor=r.actor, action=r.action, target=r.target,
                           details=json.loads(r.details) if r.details else None) for r in rows]
