"""Operating points chosen on the validation images pooled clean and under the shift suite, not on the clean split
alone; the card says how they were chosen and how a hospital refits them."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from pneumodesk.training import TrainingRecipe
from pneumodesk.training.metrics import (
    sensitivity_specificity,
    sigmoid,
    threshold_balanced,
    threshold_for_sensitivity,
)
from pneumodesk.training.model_card import (
    BALANCED_CLEAN_SENSITIVITY_FLOOR,
    ThresholdEvidence,
    calibrate_and_describe,
)
from pneumodesk.training.operating_points import evidence_under_shifts, shifted_conditions
from pneumodesk.training.shifts import SHIFT_SUITE
from pneumodesk.training.yardstick import CLEAN

RECIPE = TrainingRecipe(architecture="pneumonet-tiny", input_size=32)


class MeanBrightness(nn.Module):
    """A real (parameter-free) network: the logit is the mean of the standardised input's central rows minus 0.1."""

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return inputs[:, :, 8:24].mean(dim=(1, 2, 3)) * 4.0 - 0.1


def _clean_and_shifted(seed: int = 0, normal_shift: float = 2.5) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = np.array([0] * 60 + [1] * 60)
    clean = np.where(labels == 1, 2.0, -2.0) + rng.normal(0, 0.8, labels.size)
    shifted = clean + np.where(labels == 0, normal_shift, 0.0)  # normals score higher once the images change
    return labels, clean, shifted


def test_thresholds_come_from_the_pooled_evidence_and_the_card_says_so():
    labels, clean, shifted = _clean_and_shifted()
    evidence = ThresholdEvidence(np.tile(labels, 2), np.concatenate([clean, shifted]), "clean and shifted images",
                                 {"conditions": ["clean", "shifted"]})
    card = calibrate_and_describe(RECIPE, labels, clean, name="t", version="1", validation={}, training={},
                                  thresholds_on=evidence)
    alone = calibrate_and_describe(RECIPE, labels, clean, name="t", version="1", validation={}, training={})
    pooled = sigmoid(evidence.logits / card.temperature + card.logit_bias)
    balanced = card.operating_points["balanced"]
    # chosen on the probabilities the card itself serves (temperature and bias as stored, to 6 decimals)
    assert balanced.threshold == threshold_balanced(evidence.labels, pooled).threshold
    assert balanced.threshold > alone.operating_points["balanced"].threshold  # not bought on the clean split
    # the point's own figures are those of its threshold on the clean validation split
    clean_probabilities = card.calibrate(clean)
    assert (balanced.sensitivity, balanced.specificity) == sensitivity_specificity(
        labels, clean_probabilities, balanced.threshold)
    chosen = card.validation["operating_points_chosen_on"]
    assert chosen["basis"] == "clean and shifted images" and chosen["conditions"] == ["clean", "shifted"]
    assert "pneumodesk calibrate" in chosen["refit"]
    assert "clean and shifted images" in balanced.description
    assert alone.validation["operating_points_chosen_on"]["basis"] == "validation data"
    assert "lowered" not in balanced.description  # its clean sensitivity already reaches the floor


def test_balanced_point_keeps_the_clean_sensitivity_floor_when_shifted_normals_pull_it_up():
    labels, clean, shifted = _clean_and_shifted(normal_shift=3.0)
    evidence = ThresholdEvidence(np.tile(labels, 2), np.concatenate([clean, shifted]), "clean and shifted images")
    card = calibrate_and_describe(RECIPE, labels, clean, name="t", version="1", validation={}, training={},
                                  thresholds_on=evidence)
    pooled = sigmoid(evidence.logits / card.temperature + card.logit_bias)
    clean_probabilities = card.calibrate(clean)
    youden = threshold_balanced(evidence.labels, pooled)
    assert sensitivity_specificity(labels, clean_probabilities, youden.threshold)[0] < BALANCED_CLEAN_SENSITIVITY_FLOOR
    balanced = card.operating_points["balanced"]
    assert balanced.threshold < youden.threshold
    assert balanced.sensitivity >= BALANCED_CLEAN_SENSITIVITY_FLOOR
    assert balanced.threshold == pytest.approx(threshold_for_sensitivity(
        labels, clean_probabilities, BALANCED_CLEAN_SENSITIVITY_FLOOR).threshold, abs=1e-6)
    assert "lowered to keep 95% sensitivity on the clean validation split" in balanced.description


def test_evidence_pools_the_conditions_where_the_model_works_and_names_the_others():
    rng = np.random.default_rng(3)
    labels = np.array([0] * 20 + [1] * 20)
    inputs = rng.normal(0, 1, (40, 1, 32, 32)).astype(np.float32)
    inputs[labels == 1, :, 8:24] += 0.8  # pneumonia: brighter central rows
    conditions = {CLEAN: inputs, "inverted": -inputs, "noisy": inputs + rng.normal(0, 0.05, inputs.shape)}
    evidence = evidence_under_shifts(MeanBrightness(), {k: v.astype(np.float32) for k, v in conditions.items()},
                                     labels)
    assert evidence.details["conditions"] == [CLEAN, "noisy"]
    assert set(evidence.details["left_out_model_fails_there"]) == {"inverted"}
    assert evidence.details["left_out_model_fails_there"]["inverted"]["roc_auc"] < 0.5
    assert evidence.logits.shape == (80,) and evidence.labels.tolist() == labels.tolist() * 2
    assert "1 acquisition shifts" in evidence.basis


def test_shifted_conditions_cover_the_whole_suite():
    inputs = np.random.default_rng(0).standard_normal((2, 1, 32, 32)).astype(np.float32)
    conditions = shifted_conditions(inputs)
    assert list(conditions) == [CLEAN, *(shift.name for shift in SHIFT_SUITE)]
    assert all(values.shape == inputs.shape for values in conditions.values())
    assert not np.array_equal(conditions[SHIFT_SUITE[-1].name], inputs)
