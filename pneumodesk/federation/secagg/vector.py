"""A state dict as one flat float64 vector (tensors in sorted name order) and back: what secure aggregation sums."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ..tensors import TensorLike, as_numpy

Layout = tuple[tuple[str, tuple[int, ...], str], ...]  # (name, shape, dtype string) per tensor, in vector order


def flatten_state(state: Mapping[str, TensorLike]) -> tuple[np.ndarray, Layout]:
    """Concatenate every tensor (sorted by name) into a float64 vector; the layout restores names, shapes, dtypes."""
    arrays = {name: as_numpy(state[name]) for name in sorted(state)}
    layout: Layout = tuple((name, tuple(array.shape), array.dtype.str) for name, array in arrays.items())
    vector = np.empty(sum(array.size for array in arrays.values()), dtype=np.float64)
    offset = 0
    for array in arrays.values():
        vector[offset : offset + array.size] = array.reshape(-1)
        offset += array.size
    return vector, layout


def unflatten_state(vector: np.ndarray, layout: Layout) -> dict[str, np.ndarray]:
    """The inverse of ``flatten_state``; integer tensors are rounded to the nearest integer."""
    expected = sum(int(np.prod(shape)) for _, shape, _ in layout)
    if vector.size != expected:
        raise ValueError(f"the vector has {vector.size} values, the layout {expected}")
    state, offset = {}, 0
    for name, shape, dtype_str in layout:
        size = int(np.prod(shape))
        part = vector[offset : offset + size].reshape(shape)
        dtype = np.dtype(dtype_str)
        state[name] = (part if np.issubdtype(dtype, np.floating) else np.rint(part)).astype(dtype)
        offset += size
    return state
