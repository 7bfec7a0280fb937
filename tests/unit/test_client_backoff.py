"""The participation engine's backoff: growing delays, capped at the last, starting over after a success."""

from __future__ import annotations

import pytest

from pneumodesk.client.backoff import Backoff


def test_delays_grow_then_stay_at_the_last_and_reset_starts_over() -> None:
    backoff = Backoff((1.0, 2.0, 4.0))

    first = [backoff.next_delay() for _ in range(5)]
    backoff.reset()

    assert first == [1.0, 2.0, 4.0, 4.0, 4.0]
    assert backoff.next_delay() == 1.0 and backoff.failures == 1


@pytest.mark.parametrize("delays", [(), (1.0, -1.0)])
def test_no_delays_or_a_negative_one_is_refused(delays: tuple[float, ...]) -> None:
    with pytest.raises(ValueError):
        Backoff(delays)
