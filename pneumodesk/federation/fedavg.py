"""Federated averaging: the mean of the nodes' weights, weighted by how many examples each trained on."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

from .errors import IncompatibleUpdateError
from .tensors import StateDict, TensorLike, as_numpy


class FedAvgAccumulator:
    """Streams updates one at a time (memory: one float64 copy of the model, however many nodes).

    Invariant: ``result()`` is Σ nᵢ·wᵢ / Σ nᵢ computed in float64 and rounded once to each tensor's dtype; integer
    tensors are rounded to the nearest integer. The order of ``add`` calls changes the result by at most float64
    rounding; callers that need bit-for-bit reproducibility add updates in a fixed order (the coordinator sorts by
    sha256).
    """

    def __init__(self) -> None:
        self._sums: dict[str, np.ndarray] = {}
        self._dtypes: dict[str, np.dtype] = {}
        self._shapes: dict[str, tuple[int, ...]] = {}
        self._scratch = np.empty(0, dtype=np.float64)
        self.total_examples = 0
        self.count = 0

    def _scratch_for(self, size: int) -> np.ndarray:
        if self._scratch.size < size:
            self._scratch = np.empty(size, dtype=np.float64)
        return self._scratch[:size]

    def add(self, state: Mapping[str, TensorLike], examples: int) -> None:
        if type(examples) is not int or examples <= 0:  # not isinstance: refuses bools and numpy integers too
            raise ValueError("every update must come with a positive whole number of examples")
        arrays = {name: as_numpy(value) for name, value in state.items()}
        if self.count == 0:
            for name, array in arrays.items():
                self._dtypes[name], self._shapes[name] = array.dtype, array.shape
                self._sums[name] = np.zeros(array.shape, dtype=np.float64)
        elif arrays.keys() != self._sums.keys():
            raise IncompatibleUpdateError("The updates do not all hold the same tensors.")
        for name, array in arrays.items():
            if array.shape != self._shapes[name] or array.dtype != self._dtypes[name]:
                raise IncompatibleUpdateError(f"Tensor {name!r} differs in shape or type between updates.")
        for name, array in arrays.items():
            # nᵢ·wᵢ in float64 into a reused scratch buffer, then one in-place add: no per-tensor allocations.
            scratch = self._scratch_for(array.size).reshape(array.shape)
            np.multiply(array, float(examples), out=scratch, dtype=np.float64)
            np.add(self._sums[name], scratch, out=self._sums[name])
        self.total_examples += examples
        self.count += 1

    def result(self) -> StateDict:
        if not self.count:
            raise ValueError("no updates to average")
        averaged: StateDict = {}
        for name, total in self._sums.items():
            mean = np.divide(total, float(self.total_examples), out=self._scratch_for(total.size).reshape(total.shape))
            dtype = self._dtypes[name]
            if not np.issubdtype(dtype, np.floating):
                mean = np.rint(mean)
            averaged[name] = mean.astype(dtype)
        return averaged


def fedavg(updates: Iterable[tuple[Mapping[str, TensorLike], int]]) -> StateDict:
    """Weighted mean of ``(state_dict, example_count)`` pairs; see ``FedAvgAccumulator`` for the exact rule."""
    accumulator = FedAvgAccumulator()
    for state, examples in updates:
        accumulator.add(state, examples)
    return accumulator.result()
