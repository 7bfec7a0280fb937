"""The coordinator's in-memory rate limiter."""

from __future__ import annotations

from pneumodesk.coordinator.http_limits import RateLimiter


def test_sliding_window_allows_n_per_minute_per_key():
    now = [1000.0]
    limiter = RateLimiter(3, clock=lambda: now[0])
    assert [limiter.hit("a") for _ in range(3)] == [None, None, None]
    wait = limiter.hit("a")
    assert wait is not None and 59.0 < wait <= 60.0
    assert limiter.hit("b") is None  # other keys are independent
    assert limiter.blocked("a") is not None and limiter.blocked("c") is None
    now[0] += 60.5
    assert limiter.blocked("a") is None
    assert limiter.hit("a") is None
