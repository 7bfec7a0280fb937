"""Rate limits shared by every worker: two limiters on two engines (as two worker processes have) over one database
count together, exactly, even when they race; on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

import threading

import pytest

from pneumodesk.coordinator.db import make_engine, make_sessions, upgrade_database
from pneumodesk.coordinator.shared_limits import DatabaseRateLimiter


@pytest.fixture(params=["sqlite", "postgresql"])
def two_workers(request, tmp_path):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'limits.db'}"
    else:
        url = request.getfixturevalue("postgres_server").fresh_database_url()
    engines = [make_engine(url) for _ in range(2)]
    upgrade_database(engines[0])
    clock = [1000.0]
    limiters = [DatabaseRateLimiter(make_sessions(e), "login", 10, clock=lambda: clock[0]) for e in engines]
    yield limiters, clock
    for engine in engines:
        engine.dispose()


def test_hits_on_either_worker_count_against_one_limit_and_expire(two_workers):
    (first, second), clock = two_workers
    assert [first.hit("10.0.0.1") if i % 2 else second.hit("10.0.0.1") for i in range(10)] == [None] * 10
    assert first.hit("10.0.0.1") == pytest.approx(60.0) and second.blocked("10.0.0.1") == pytest.approx(60.0)
    assert first.hit("10.0.0.2") is None  # another key has its own count
    second.forget("10.0.0.1")  # a success gives its count back, whichever worker counted it
    assert first.hit("10.0.0.1") is None and second.hit("10.0.0.1") is not None
    clock[0] += 60.0
    assert second.hit("10.0.0.1") is None  # the window passed


def test_racing_workers_allow_exactly_the_limit(two_workers):
    limiters, _clock = two_workers
    allowed: list[bool] = []
    lock = threading.Lock()

    def attempt(limiter: DatabaseRateLimiter) -> None:
        result = limiter.hit("203.0.113.9") is None
        with lock:
            allowed.append(result)

    threads = [threading.Thread(target=attempt, args=(limiters[i % 2],)) for i in range(24)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(allowed) == 24 and allowed.count(True) == 10
