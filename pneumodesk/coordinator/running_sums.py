"""Running FedAvg sums: each round's Σ nᵢ·wᵢ (float64) and Σ nᵢ, added to as updates arrive.

Closing a round then costs one division per weight, written straight into the new model's safetensors buffer,
however many nodes took part.

Invariants: the mean is Σ nᵢ·wᵢ / Σ nᵢ computed in float64 and rounded once to each tensor's dtype (integers to the
nearest whole number), as ``pneumodesk.federation.fedavg`` defines it; each key (a node) is added at most once; the
sums are an in-memory cache only — the database and the blob store stay the truth, so a restarted process (or another
worker) rebuilds what it lacks from the stored updates. The order in which updates are added changes the float64 sum
by rounding only.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping

import numpy as np

from pneumodesk.federation.errors import IncompatibleUpdateError

from .safetensors_io import write_safetensors

BLOCK = 1 << 18  # elements per step: the float64 scratch (2 MiB) stays in cache


class RunningSum:
    """One round's sums. Callers hold ``lock`` around ``add`` and ``write`` (uploads arrive on many threads)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.included: set[str] = set()
        self.total_examples = 0
        self._sums: dict[str, np.ndarray] = {}
        self._layout: dict[str, tuple[np.dtype, tuple[int, ...]]] = {}
        self._scratch = np.empty(BLOCK, dtype=np.float64)

    def add(self, key: str, arrays: Mapping[str, np.ndarray], examples: int) -> bool:
        """Add nᵢ·wᵢ once per ``key``; returns False (and changes nothing) when ``key`` was already added."""
        if key in self.included:
            return False
        count: object = examples  # callers outside the type checker may pass anything
        if not isinstance(count, int) or count <= 0:
            raise ValueError("every update must come with a positive whole number of examples")
        first = not self._layout
        if first:  # the sums start as the first update itself: no zero-filled pass, no separate add
            self._layout = {name: (a.dtype, a.shape) for name, a in arrays.items()}
            self._sums = {name: np.empty(a.size, dtype=np.float64) for name, a in arrays.items()}
        elif arrays.keys() != self._layout.keys():
            raise IncompatibleUpdateError("The updates do not all hold the same tensors.")
        for name, array in arrays.items():
            if (array.dtype, array.shape) != self._layout[name]:
                raise IncompatibleUpdateError(f"Tensor {name!r} differs in shape or type between updates.")
        weight = float(examples)
        for name, array in arrays.items():
            flat, total = array.reshape(-1), self._sums[name]
            for start in range(0, flat.size, BLOCK):
                stop = min(start + BLOCK, flat.size)
                if first:
                    np.multiply(flat[start:stop], weight, out=total[start:stop], dtype=np.float64)
                    continue
                scratch = self._scratch[: stop - start]
                np.multiply(flat[start:stop], weight, out=scratch, dtype=np.float64)
                np.add(total[start:stop], scratch, out=total[start:stop])
        self.included.add(key)
        self.total_examples += examples
        return True

    def write(self, metadata: Mapping[str, str] | None = None) -> memoryview:
        """The weighted mean as safetensors bytes (computed straight into the output buffer)."""
        if not self.included:
            raise ValueError("no updates to average")
        total = float(self.total_examples)
        for name, sums in self._sums.items():  # a model with NaN or inf in it is never published
            if not np.isfinite(sums).all():
                raise ValueError(f"the aggregate is not finite (tensor {name!r}); the round's model is refused")

        def fill(name: str, out: np.ndarray) -> None:
            sums, flat = self._sums[name], out.reshape(-1)
            integer = not np.issubdtype(out.dtype, np.floating)
            for start in range(0, sums.size, BLOCK):
                stop = min(start + BLOCK, sums.size)
                if integer:
                    scratch = self._scratch[: stop - start]
                    np.divide(sums[start:stop], total, out=scratch)
                    np.rint(scratch, out=scratch)
                    flat[start:stop] = scratch
                else:
                    np.divide(sums[start:stop], total, out=flat[start:stop], casting="unsafe")

        return write_safetensors(self._layout, fill, metadata)


class RoundSums:
    """Running sums by round id. A closed round's sums are dropped and never recreated (late adds are ignored)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: dict[int, RunningSum] = {}
        self._closed: set[int] = set()

    def get(self, round_id: int) -> RunningSum | None:
        """The round's sums (created on first use); ``None`` once the round was closed."""
        with self._lock:
            if round_id in self._closed:
                return None
            return self._open.setdefault(round_id, RunningSum())

    def close(self, round_id: int) -> None:
        with self._lock:
            self._open.pop(round_id, None)
            self._closed.add(round_id)

    def retain(self, unfinished: set[int], newest: int) -> None:
        """Close every round up to id ``newest`` with sums here that is not in ``unfinished`` (e.g. finished by
        another worker); rounds newer than ``newest`` opened after the caller looked and are kept."""
        with self._lock:
            finished = {i for i in self._open if i <= newest} - unfinished
        for round_id in finished:
            self.close(round_id)
