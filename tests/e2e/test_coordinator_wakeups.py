"""Cross-worker wake-ups on a real PostgreSQL server: a change announced by one process (its own engine) reaches the
listener of another at once (LISTEN/NOTIFY), and the listener comes back after the server restarts."""

from __future__ import annotations

import threading

from pneumodesk.coordinator.db import make_engine
from pneumodesk.coordinator.wakeups import PostgresWakeups

from .coordinator_harness import wait_until


def test_an_announcement_wakes_another_process_listener_also_after_a_server_restart(postgres_server):
    url = postgres_server.fresh_database_url()
    listener_engine, announcer_engine = make_engine(url), make_engine(url)
    woken = threading.Event()
    listener = PostgresWakeups(listener_engine, woken.set)
    announcer = PostgresWakeups(announcer_engine, lambda: None)
    listener.start()
    try:
        def announced_and_woken() -> bool:  # the listener may not be listening yet on the first try
            announcer.announce()
            return woken.wait(0.5)

        wait_until(announced_and_woken, timeout=10, what="the first wake-up")
        woken.clear()
        announcer.announce()
        assert woken.wait(1.0), "a wake-up took longer than a second"

        postgres_server.restart()
        woken.clear()
        wait_until(announced_and_woken, timeout=30, what="a wake-up after the restart")
    finally:
        listener.stop()
        listener_engine.dispose()
        announcer_engine.dispose()
