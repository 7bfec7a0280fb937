"""Rate limits every worker shares: hits recorded in the database (table ``rate_limit_hits``), so with N workers a
client gets the configured rate, not N times it.

Same contract as ``http_limits.RateLimiter`` (at most ``per_minute`` hits per key in any 60-second window; ``forget``
takes back the newest hit). Keys are stored as sha256 only (an address or a user name never sits in the table), and
hits older than a minute are deleted as keys are counted. On PostgreSQL each check-and-record holds a transaction
advisory lock on its key, so two workers cannot both take the last allowed hit.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable

from sqlalchemy import delete, func, select, text
from sqlalchemy.orm import Session, sessionmaker

from .db import RateLimitHit

WINDOW_SECONDS = 60.0


class DatabaseRateLimiter:
    def __init__(self, sessions: sessionmaker[Session], kind: str, per_minute: int,
                 clock: Callable[[], float] = time.time) -> None:
        self._sessions, self.kind, self.per_minute, self._clock = sessions, kind, per_minute, clock

    @staticmethod
    def _digest(key: str) -> str:
        return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()

    def _lock(self, session: Session, digest: str) -> None:
        if session.get_bind().dialect.name == "postgresql":
            session.execute(text("SELECT pg_advisory_xact_lock(:key)"),
                            {"key": int(digest[:15], 16)})  # 60 bits: a PostgreSQL bigint

    def _wait(self, session: Session, digest: str, now: float) -> float | None:
        session.execute(delete(RateLimitHit).where(RateLimitHit.kind == self.kind, RateLimitHit.key_sha256 == digest,
                                                   RateLimitHit.at <= now - WINDOW_SECONDS))
        count, oldest = session.execute(select(func.count(), func.min(RateLimitHit.at)).where(
            RateLimitHit.kind == self.kind, RateLimitHit.key_sha256 == digest)).one()
        if count >= self.per_minute:
            return max(0.0, float(oldest) + WINDOW_SECONDS - now)
        return None

    def blocked(self, key: str) -> float | None:
        """Without recording anything: ``None`` if a hit would be allowed now, else the seconds to wait."""
        digest = self._digest(key)
        with self._sessions() as session:
            self._lock(session, digest)
            wait = self._wait(session, digest, self._clock())
            session.commit()
        return wait

    def hit(self, key: str) -> float | None:
        """Record a hit; ``None`` if allowed, else the seconds to wait before the next one would be."""
        digest, now = self._digest(key), self._clock()
        with self._sessions() as session:
            self._lock(session, digest)
            wait = self._wait(session, digest, now)
            if wait is None:
                session.add(RateLimitHit(kind=self.kind, key_sha256=digest, at=now))
            session.commit()
        return wait

    def forget(self, key: str) -> None:
        """Take back ``key``'s newest hit (an attempt that turned out legitimate, e.g. a successful login)."""
        digest = self._digest(key)
        with self._sessions() as session:
            self._lock(session, digest)
            newest = session.scalars(select(RateLimitHit.id).where(
                RateLimitHit.kind == self.kind, RateLimitHit.key_sha256 == digest)
                .order_by(RateLimitHit.at.desc(), RateLimitHit.id.desc()).limit(1)).first()
            if newest is not None:
                session.execute(delete(RateLimitHit).where(RateLimitHit.id == newest))
            session.commit()
