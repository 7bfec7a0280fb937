"""Operating points that transfer: the evidence the default thresholds are chosen on at training time.

The clean validation split alone is saturated (ROC-AUC ≈ 0.995), so a threshold fitted on it buys specificity that
vanishes on another centre's images. Instead the thresholds are chosen on the validation images pooled clean and
under every shift of the shift suite (``shifts.SHIFT_SUITE``, applied to the preprocessed images), each condition
weighing the same. A condition in which the model itself fails (ROC-AUC below ``min_auc``, the floor the
out-of-distribution check also uses) is left out of the pool, as it is left unprotected there: those images are
meant to be refused, and letting them pull the thresholds would spoil the conditions in which the model works.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from torch import nn

from .model_card import ThresholdEvidence
from .out_of_distribution import DEFAULT_MIN_AUC
from .shifts import SHIFT_SUITE, shift_preprocessed
from .trainer import predict_logits
from .yardstick import CLEAN


def shifted_conditions(inputs: np.ndarray) -> dict[str, np.ndarray]:
    """The preprocessed ``inputs`` as they are (``CLEAN``) and under each shift of the suite, by condition name."""
    conditions = {CLEAN: inputs}
    for shift in SHIFT_SUITE:
        conditions[shift.name] = shift_preprocessed(inputs, shift)
    return conditions


def evidence_under_shifts(
    model: nn.Module, conditions: Mapping[str, np.ndarray], labels: np.ndarray, *, min_auc: float = DEFAULT_MIN_AUC,
    clean: str = CLEAN,
) -> ThresholdEvidence:
    """The model's logits on every condition in which its ROC-AUC reaches ``min_auc`` (``clean`` always), pooled."""
    from sklearn.metrics import roc_auc_score

    both_classes = len(set(np.asarray(labels).tolist())) == 2
    kept: dict[str, np.ndarray] = {}
    left_out: dict[str, float] = {}
    for name, inputs in conditions.items():
        logits = predict_logits(model, inputs)
        auc = float(roc_auc_score(labels, logits)) if both_classes else float("nan")
        if name == clean or auc >= min_auc:
            kept[name] = logits
        else:
            left_out[name] = round(auc, 4)
    basis = (f"the validation images pooled clean and under {len(kept) - 1} acquisition shifts of the shift suite "
             f"(each condition weighing the same)")
    details: dict[str, object] = {
        "images_per_condition": len(labels),
        "conditions": list(kept),
        "left_out_model_fails_there": {name: {"roc_auc": auc} for name, auc in left_out.items()},
        "rule": f"conditions where the model's ROC-AUC is below {min_auc} are left out (the out-of-distribution check "
        "does not protect them either); the temperature is still fitted on the clean validation split",
    }
    return ThresholdEvidence(np.tile(np.asarray(labels), len(kept)), np.concatenate(list(kept.values())), basis,
                             details)
