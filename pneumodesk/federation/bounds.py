"""What a node does to its trained update before it leaves: clip its norm and report a public example count.

Invariants: the update sent is within ``plan.max_update_norm`` (L2, floating-point tensors, from the round's global
weights) and holds only finite values; the example count sent is ``plan.reported_examples`` (the plan's cap under
DP, so the exact count never leaves the node). The coordinator checks both where it can see them; the node's
acceptance gate on the new global model stays the last line.
"""

from __future__ import annotations

from collections.abc import Mapping

from .plan import TrainingPlan
from .tensors import StateDict, TensorLike, clip_update_norm, state_dict_from_bytes


def bounded_update(state: Mapping[str, TensorLike], examples: int, global_weights: bytes,
                   plan: TrainingPlan) -> tuple[StateDict, int]:
    """(the clipped update, the example count to report) for a round trained from ``global_weights``."""
    clipped = clip_update_norm(state, state_dict_from_bytes(global_weights), plan.max_update_norm)
    return clipped, plan.reported_examples(examples)
