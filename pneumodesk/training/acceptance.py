"""The local acceptance gate: measure weights on the node's own validation split and turn them into a candidate.

A new global model is never used for prediction directly: the node evaluates it on its validation split (fixed at
dataset registration, never trained on), calibrates temperature and operating points there, and writes a
``ModelBundle`` that an admin accepts or rejects beside the current model's figures.
Nothing computed here leaves the node.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pneumodesk.model import ModelBundle, ModelCard, build_model, load_bundle
from pneumodesk.model.curves import model_curves

from .datasets import TrainingDataError
from .local_round import load_training_arrays
from .metrics import expected_calibration_error, roc_auc_with_ci, sensitivity_specificity, sigmoid
from .model_card import calibrate_and_describe
from .trainer import TrainingRecipe, predict_logits

# Validation data: ``(path, label)`` pairs (read through imaging.preprocess), or already preprocessed arrays.
Validation = Sequence[tuple[Path, int]] | tuple[np.ndarray, np.ndarray]


def _validation_arrays(validation: Validation, input_size: int) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(validation, tuple) and len(validation) == 2 and isinstance(validation[0], np.ndarray):
        inputs, labels = validation
    else:
        inputs, labels = load_training_arrays(list(validation), input_size)
    labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    if len(set(labels.tolist())) < 2:
        raise TrainingDataError("The validation split needs images of both classes (NORMAL and PNEUMONIA).")
    return inputs, labels


def _logits(state: dict[str, torch.Tensor], architecture: str, inputs: np.ndarray) -> np.ndarray:
    model = build_model(architecture)
    model.load_state_dict(state, strict=True)
    return predict_logits(model, inputs)


def _figures(labels: np.ndarray, probabilities: np.ndarray, threshold: float,
             marks: dict[str, float] | None = None, default: str = "threshold") -> dict[str, Any]:
    """The figures at ``threshold``, with the curves (ROC with ``marks`` — operating point name → threshold —,
    reliability, confusion counts at the ``default`` mark) drawn from the same probabilities."""
    marks = marks or {default: threshold}
    auc, (low, high) = roc_auc_with_ci(labels, probabilities, resamples=500)
    sensitivity, specificity = sensitivity_specificity(labels, probabilities, threshold)
    return {
        "images": len(labels),
        "pneumonia": int((labels == 1).sum()),
        "normal": int((labels == 0).sum()),
        "roc_auc": round(auc, 4),
        "roc_auc_ci95": [round(low, 4), round(high, 4)],
        "threshold": threshold,
        "sensitivity": round(sensitivity, 4),
        "specificity": round(specificity, 4),
        "expected_calibration_error": round(expected_calibration_error(labels, probabilities), 4),
        "curves": model_curves(labels, probabilities, marks, default).to_json_dict(),
    }


def _marks(card: ModelCard) -> tuple[dict[str, float], str]:
    return {name: point.threshold for name, point in card.operating_points.items()}, card.default_operating_point


def evaluate_weights(
    state: dict[str, torch.Tensor],
    architecture: str,
    input_size: int,
    validation_files: Validation,
    *,
    card: ModelCard | None = None,
) -> dict[str, Any]:
    """ROC-AUC (95 % CI), sensitivity, specificity and calibration error on the validation split.

    With ``card`` (e.g. the current model's) its calibration and default operating point are used, as prediction
    would; without one the raw sigmoid is scored at 0.5. ROC-AUC does not depend on either.
    """
    inputs, labels = _validation_arrays(validation_files, input_size)
    logits = _logits(state, architecture, inputs)
    if card is None:
        return _figures(labels, sigmoid(logits), 0.5)
    _, point = card.operating_point(None)
    return _figures(labels, card.calibrate(logits), point.threshold, *_marks(card))


def evaluate_bundle_locally(bundle: ModelBundle, validation_files: Validation) -> dict[str, Any]:
    """The same figures for an existing bundle (the current model), with its own calibration and threshold."""
    card = bundle.card
    return evaluate_weights(bundle.state_dict, card.architecture, card.input_size, validation_files, card=card)


def candidate_bundle(
    state: dict[str, torch.Tensor],
    base: ModelBundle | ModelCard,
    validation_files: Validation,
    out_dir: str | os.PathLike[str],
    *,
    version: str | None = None,
    training: dict[str, Any] | None = None,
) -> tuple[Path, dict[str, Any]]:
    """Write a bundle of ``state`` (base's architecture and input size) calibrated on the local validation split.

    Returns (bundle folder, figures at the new card's default operating point). The thresholds were chosen on the
    same split, so sensitivity/specificity are optimistic; ROC-AUC is not affected by the calibration.
    """
    base_card = base.card if isinstance(base, ModelBundle) else base
    inputs, labels = _validation_arrays(validation_files, base_card.input_size)
    logits = _logits(state, base_card.architecture, inputs)
    recipe = TrainingRecipe(architecture=base_card.architecture, input_size=base_card.input_size)
    card = calibrate_and_describe(
        recipe,
        labels,
        logits,
        name=base_card.name,
        version=version or time.strftime("%Y.%m.%d-%H%M%S", time.gmtime()),
        validation={"split": "this node's own validation split (fixed at dataset registration)"},
        training={**(training or {}), "source": "federated training", "base_version": base_card.version},
    )
    model = build_model(base_card.architecture)
    model.load_state_dict(state, strict=True)
    out = Path(out_dir)
    ModelBundle.from_model(model, card).save(out)
    bundle = load_bundle(out)  # as written, with the weights' sha256 in its card
    _, point = bundle.card.operating_point(None)
    return out, _figures(labels, bundle.card.calibrate(logits), point.threshold, *_marks(bundle.card))
