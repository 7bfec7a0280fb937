"""Cross-process wake-ups on PostgreSQL: a change one worker (or the operator CLI) commits wakes every worker's
long polls at once, through ``LISTEN``/``NOTIFY`` on one channel.

Invariants: a notification carries no data (only "something changed": each long poll re-reads the database, so a
lost or duplicated notification costs at most a re-read — and the long polls' periodic re-read stays the fallback
when the listening connection is down); the listener runs on its own connection, outside the engine's pool, in a
daemon thread that reconnects after a failure.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, cast

from sqlalchemy import Engine, text

if TYPE_CHECKING:
    import psycopg

log = logging.getLogger(__name__)

CHANNEL = "pneumodesk_coordinator_changes"
#: Seconds between reconnection attempts, and the longest the listener waits before checking whether to stop.
RETRY_SECONDS = 1.0


def supports_notify(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


class PostgresWakeups:
    """``announce`` tells every listening process; ``start`` listens, calling ``on_change`` for each notification."""

    def __init__(self, engine: Engine, on_change: Callable[[], None]) -> None:
        self._engine = engine
        self._on_change = on_change
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def announce(self) -> None:
        """Notify the channel (delivered to listeners when this short transaction commits); never raises: a missed
        wake-up is made good by the long polls' periodic re-read."""
        try:
            with self._engine.connect() as connection:
                connection.execute(text("SELECT pg_notify(:channel, '')"), {"channel": CHANNEL})
                connection.commit()
        except Exception:
            log.warning("Could not notify the other coordinator workers of a change", exc_info=True)

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._listen_forever, name="pneumodesk-wakeups", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2 * RETRY_SECONDS + 1)
            self._thread = None

    def _listen_forever(self) -> None:
        while not self._stop.is_set():
            try:
                self._listen()
            except Exception:
                log.warning("The change listener lost its database connection; reconnecting", exc_info=True)
                self._on_change()  # something may have changed while it was down
            self._stop.wait(RETRY_SECONDS)

    def _listen(self) -> None:
        pooled = self._engine.raw_connection()
        connection = cast("psycopg.Connection[tuple[object, ...]] | None", pooled.driver_connection)
        pooled.detach()  # this connection never goes back to the pool: it stays in LISTEN mode until closed
        if connection is None:
            raise RuntimeError("the database driver gave no connection to listen on")
        try:
            connection.autocommit = True
            connection.execute(f"LISTEN {CHANNEL}")
            while not self._stop.is_set():
                for _notice in connection.notifies(timeout=RETRY_SECONDS, stop_after=64):
                    self._on_change()
        finally:
            connection.close()
