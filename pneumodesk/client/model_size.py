"""How many bytes a model download may have: the size this node's own registry implies for an architecture.

A coordinator chooses what it sends; the node decides what it reads. A model's safetensors body is its tensors'
bytes (``numel × element size`` each, as this node builds the architecture) plus a header of names, dtypes, shapes
and offsets, bounded here by ``HEADER_MARGIN`` plus ``PER_TENSOR_MARGIN`` per tensor. Nothing larger can be a
model of that architecture, so the transport stops reading past the limit (``Transport.send(max_body=…)``).

Torch is imported on first use only (the client imports no torch until it trains).
"""

from __future__ import annotations

from functools import cache

HEADER_MARGIN = 64 * 1024
PER_TENSOR_MARGIN = 1024


@cache
def weights_size_limit(architecture: str) -> int:
    """The most bytes a safetensors body of ``architecture`` can take (``UnknownArchitectureError`` if unknown)."""
    import torch

    from pneumodesk.model import build_model

    with torch.device("meta"):  # shapes only: nothing is allocated or initialised for real
        state = build_model(architecture).state_dict()
    tensors = sum(value.numel() * value.element_size() for value in state.values())
    return tensors + HEADER_MARGIN + PER_TENSOR_MARGIN * len(state)


@cache
def largest_weights_size_limit() -> int:
    """The limit for a download whose architecture is not known: the largest this node's registry has."""
    from pneumodesk.model import architecture_names

    return max(weights_size_limit(name) for name in architecture_names())
