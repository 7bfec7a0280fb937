"""How long to wait before asking again after something keeps failing (coordinator unreachable, node not yet
approved by the operator)."""

from __future__ import annotations

from collections.abc import Sequence


class Backoff:
    """Growing delays between attempts: the n-th consecutive failure waits ``delays[n]`` seconds, and every failure
    after the last delay waits that last delay (a cap, not an end). ``reset()`` after a success starts again at
    ``delays[0]``. Not thread-safe: one per loop.

    One instance may serve several kinds of failure of the same loop; they then share the count, so a coordinator
    that alternates between two ways of failing still backs off.
    """

    def __init__(self, delays: Sequence[float]) -> None:
        if not delays or any(delay < 0 for delay in delays):
            raise ValueError("Backoff needs at least one delay, none negative.")
        self.delays = tuple(float(delay) for delay in delays)
        self.failures = 0

    def next_delay(self) -> float:
        """Count one more failure; the seconds to wait before the next attempt."""
        delay = self.delays[min(self.failures, len(self.delays) - 1)]
        self.failures += 1
        return delay

    def reset(self) -> None:
        self.failures = 0
