"""The coordinator's global model, read as the node's own registry says the approved plan's architecture is: the
check between a download (sha256 already checked) and anything that trains on it or offers it as a candidate.

Invariant: ``checked_global_model`` returns only float32 arrays whose names and shapes are exactly those of
``build_model(plan.architecture)`` and whose values are all finite; anything else is a ``ProtocolError`` (a plain
sentence) before a single step is trained, ε is spent or a candidate is stored. The coordinator's sha256 proves
only that the bytes are the ones it meant to send, not that they are a model this plan can train.
"""

from __future__ import annotations

import numpy as np

from pneumodesk.federation.errors import WeightsIntegrityError
from pneumodesk.federation.plan import TrainingPlan
from pneumodesk.federation.tensors import StateDict, state_dict_from_bytes

from .errors import ProtocolError

DISCARDED = "It was discarded; nothing was trained on it or stored."


def _name(name: str) -> str:
    """A tensor name from the coordinator, safe to show (ASCII, short)."""
    shown = ascii(name)
    return shown if len(shown) <= 60 else shown[:57] + "…'"


def reference_signature(architecture: str) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """name → (shape, dtype) of a fresh model of ``architecture`` from this node's registry."""
    from pneumodesk.model import build_model

    return {name: (tuple(tensor.shape), tensor.detach().cpu().numpy().dtype)
            for name, tensor in build_model(architecture).state_dict().items()}


def checked_global_model(data: bytes, plan: TrainingPlan, what: str = "The round's global model") -> StateDict:
    """The arrays of ``data`` when they are a model of ``plan.architecture`` (see the module docstring)."""
    try:
        state = state_dict_from_bytes(data)
    except WeightsIntegrityError as error:
        raise ProtocolError(f"{what} from the coordinator cannot be read: {error} {DISCARDED}") from None
    reference = reference_signature(plan.architecture)
    prefix = f"{what} from the coordinator is not a {plan.architecture} model as the approved plan says"
    if state.keys() != reference.keys():
        missing = sorted(reference.keys() - state.keys())
        extra = sorted(state.keys() - reference.keys())
        parts = []
        if missing:
            parts.append(f"{len(missing)} tensor(s) missing, e.g. {_name(missing[0])}")
        if extra:
            parts.append(f"{len(extra)} unexpected tensor(s), e.g. {_name(extra[0])}")
        raise ProtocolError(f"{prefix}: {', '.join(parts)}. {DISCARDED}")
    for name, (shape, dtype) in reference.items():
        array = state[name]
        if tuple(array.shape) != shape:
            raise ProtocolError(f"{prefix}: tensor {_name(name)} has shape {tuple(array.shape)}, expected {shape}. "
                                f"{DISCARDED}")
        if array.dtype != dtype:
            raise ProtocolError(f"{prefix}: tensor {_name(name)} holds {array.dtype} values, expected {dtype}. "
                                f"{DISCARDED}")
        if not np.isfinite(array).all():
            raise ProtocolError(f"{what} from the coordinator holds values that are not finite (NaN or infinity) "
                                f"in tensor {_name(name)}. {DISCARDED}")
    return state
