"""Measure a model bundle on labelled data with its own calibration and operating points."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from pneumodesk.model import ModelBundle

from .datasets import load_model_inputs, load_npz, scan_folder
from .metrics import expected_calibration_error, roc_auc_with_ci, sensitivity_specificity
from .split import DEFAULT_SEED, grouped_split
from .trainer import predict_logits


def evaluate_bundle(bundle: ModelBundle, data: Path, split: str = "all") -> dict[str, Any]:
    """Metrics on ``data``: every image (``all``) or only the patient-grouped validation split the bundle's own
    training recipe carved out (``validation``; same seed, so the same images)."""
    card = bundle.card
    inputs, labels, unreadable = labelled_inputs(bundle, data, split)
    if len(set(labels.tolist())) < 2:
        raise ValueError("Evaluation needs images of both classes (NORMAL and PNEUMONIA).")
    probabilities = card.calibrate(predict_logits(bundle.build(), inputs))
    auc, (low, high) = roc_auc_with_ci(labels, probabilities)
    points = {}
    for name, point in card.operating_points.items():
        sensitivity, specificity = sensitivity_specificity(labels, probabilities, point.threshold)
        points[name] = {"threshold": point.threshold, "sensitivity": sensitivity, "specificity": specificity}
    return {
        "model_version": card.version,
        "data": str(data),
        "split": split,
        "images": len(labels),
        "pneumonia": int((labels == 1).sum()),
        "normal": int((labels == 0).sum()),
        "unreadable": [{"path": str(path), "error": error} for path, error in unreadable],
        "roc_auc": auc,
        "roc_auc_ci95": [low, high],
        "expected_calibration_error": expected_calibration_error(labels, probabilities),
        "operating_points": points,
    }


def labelled_inputs(bundle: ModelBundle, data: Path, split: str) -> tuple[np.ndarray, np.ndarray, list]:
    """(preprocessed inputs, labels, unreadable files) of ``data``: all of it, or the bundle's validation split."""
    size = bundle.card.input_size
    if data.suffix == ".npz":
        train, validation = load_npz(data, size)
        if split == "validation":
            return validation.inputs, validation.labels, []
        return np.concatenate([train.inputs, validation.inputs]), np.concatenate([train.labels, validation.labels]), []
    dataset = scan_folder(data)
    inputs, unreadable = load_model_inputs([image.path for image in dataset.images], size)
    bad = {path for path, _ in unreadable}
    kept = [image for image in dataset.images if image.path not in bad]
    labels = np.array([image.label for image in kept], dtype=np.int64)
    if split == "validation":
        seed = int(bundle.card.training.get("recipe", {}).get("seed", DEFAULT_SEED))
        _, chosen = grouped_split(labels, [image.group for image in kept], seed=seed)
        return inputs[chosen], labels[chosen], unreadable
    return inputs, labels, unreadable
