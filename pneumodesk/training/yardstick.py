"""The generalisation yardstick: a model's figures under the shift suite, and patient-grouped k-fold
cross-validation of a training recipe. ``benchmarks/shift_suite.py`` prints them as JSON.

Invariants: the validation images are exactly those the bundle's own training carved out (same scan, same
grouping, same seed); a subset (``limit``) is drawn from them deterministically and stratified by class; a shift is
applied to the decoded image before ``preprocess``, as a different collection's image would arrive.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold

from pneumodesk.imaging import XRay, preprocess, read_xray
from pneumodesk.model import ModelBundle, build_model

from .datasets import FolderDataset, LabelledImage, scan_folder
from .metrics import roc_auc_with_ci, sensitivity_specificity, threshold_balanced
from .recipe import TrainingRecipe
from .shifts import SHIFT_SUITE, Shift
from .split import DEFAULT_SEED, grouped_split
from .trainer import predict_logits, train_model

CLEAN = "none (validation images as they are)"


@dataclass(frozen=True)
class LabelledXRays:
    xrays: list[XRay]
    labels: np.ndarray  # int64, 1 = pneumonia


def bundle_seed(bundle: ModelBundle) -> int:
    return int(bundle.card.training.get("recipe", {}).get("seed", DEFAULT_SEED))


def validation_xrays(data: Path, seed: int, limit: int | None = None) -> LabelledXRays:
    """The decoded validation images of ``data`` as the training pipeline splits it (every file is assumed readable,
    as it was for the shipped model: an unreadable file would change the split, so it raises here)."""
    dataset = scan_folder(data)
    _, validation = grouped_split(dataset.labels, [image.group for image in dataset.images], seed=seed)
    indices = validation[stratified_subset(dataset.labels[validation], limit, seed)[1]]
    return LabelledXRays([read_xray(dataset.images[i].path) for i in indices], dataset.labels[indices])


def stratified_subset(labels: np.ndarray, limit: int | None, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(labels, positions) of at most ``limit`` items keeping the class ratio; the same seed, the same subset."""
    positions = np.arange(len(labels))
    if not limit or limit >= len(labels):
        return labels, positions
    rng = np.random.default_rng(seed)
    picked = []
    for label in (0, 1):
        members = positions[labels == label]
        take = max(1, round(limit * len(members) / len(labels)))
        picked.append(rng.choice(members, min(take, len(members)), replace=False))
    kept = np.sort(np.concatenate(picked))
    return labels[kept], kept


def shifted_inputs(xrays: Sequence[XRay], shift: Shift | None, input_size: int, seed: int = 0) -> np.ndarray:
    """Model inputs (n, 1, S, S) float32 of the images under ``shift`` (None: unshifted). Image ``i`` draws its
    random numbers (noise) from ``seed + i``, so every run sees the same shifted images."""
    rows = []
    for index, xray in enumerate(xrays):
        pixels = xray.pixels if shift is None else shift(xray.pixels, np.random.default_rng(seed + index))
        rows.append(preprocess(XRay(pixels, xray.source), input_size))
    return np.stack(rows)


def bootstrap_rate(hits: np.ndarray, resamples: int, rng: np.random.Generator) -> dict[str, Any]:
    """A proportion with the median and 95 % percentile interval of its bootstrap distribution."""
    hits = np.asarray(hits, dtype=np.float64)
    estimates = rng.choice(hits, (resamples, hits.size)).mean(axis=1)
    low, median, high = np.percentile(estimates, [2.5, 50, 97.5])
    return {"value": round(float(hits.mean()), 4), "median": round(float(median), 4),
            "ci95": [round(float(low), 4), round(float(high), 4)]}


def figures(labels: np.ndarray, probabilities: np.ndarray, threshold: float, resamples: int) -> dict[str, Any]:
    """ROC-AUC (bootstrap CI) and sensitivity/specificity at ``threshold`` (bootstrap medians and CIs)."""
    auc, (low, high) = roc_auc_with_ci(labels, probabilities, resamples=resamples)
    predicted = probabilities >= threshold
    rng = np.random.default_rng(0)
    return {
        "roc_auc": round(auc, 4),
        "roc_auc_ci95": [round(low, 4), round(high, 4)],
        "sensitivity": bootstrap_rate(predicted[labels == 1], resamples, rng),
        "specificity": bootstrap_rate(~predicted[labels == 0], resamples, rng),
    }


def shift_suite(
    bundle: ModelBundle,
    images: LabelledXRays,
    *,
    shifts: Sequence[Shift] = SHIFT_SUITE,
    operating_point: str = "balanced",
    resamples: int = 1000,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """The bundle's figures on the clean images and under each shift, and the worst case over the shifts."""
    model = bundle.build()
    card = bundle.card
    _, point = card.operating_point(operating_point)
    conditions: dict[str, Any] = {}
    for shift in (None, *shifts):
        name = CLEAN if shift is None else shift.name
        if progress:
            progress(name)
        inputs = shifted_inputs(images.xrays, shift, card.input_size)
        probabilities = card.calibrate(predict_logits(model, inputs))
        conditions[name] = {"family": "none" if shift is None else shift.family,
                            **figures(images.labels, probabilities, point.threshold, resamples)}
    shifted = {name: row for name, row in conditions.items() if name != CLEAN}

    def worst(key: str) -> dict[str, Any]:
        def value(row: dict[str, Any]) -> float:
            return float(row[key] if key == "roc_auc" else row[key]["value"])

        name = min(shifted, key=lambda n: value(shifted[n]))
        return {"shift": name, "value": value(shifted[name])}

    return {
        "model_version": card.version,
        "operating_point": {"name": operating_point, "threshold": point.threshold},
        "images": len(images.labels),
        "pneumonia": int((images.labels == 1).sum()),
        "normal": int((images.labels == 0).sum()),
        "conditions": conditions,
        "worst_case": {key: worst(key) for key in ("roc_auc", "sensitivity", "specificity")},
        "median_over_shifts": {
            "roc_auc": round(float(np.median([row["roc_auc"] for row in shifted.values()])), 4),
            "sensitivity": round(float(np.median([row["sensitivity"]["value"] for row in shifted.values()])), 4),
            "specificity": round(float(np.median([row["specificity"]["value"] for row in shifted.values()])), 4),
        },
    }


def cross_validate(
    data: Path,
    recipe: TrainingRecipe,
    *,
    folds: int = 5,
    subset: int | None = None,
    shifts: Sequence[Shift] = (),
    resamples: int = 1000,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Patient-grouped, stratified k-fold cross-validation of ``recipe`` on a folder dataset (optionally a seeded
    subset of whole patient groups). Each fold's model is scored on its held-out fold, clean and under ``shifts``,
    at the balanced threshold chosen on that fold's clean predictions (the shifts then show how well it transfers)."""
    dataset = scan_folder(data)
    images = _subset_by_group(dataset, subset, recipe.seed)
    labels = np.array([image.label for image in images], dtype=np.int64)
    xrays = [read_xray(image.path) for image in images]
    inputs = shifted_inputs(xrays, None, recipe.input_size).astype(np.float16)
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=recipe.seed)
    rows = []
    for fold, (train, held_out) in enumerate(splitter.split(inputs, labels, [image.group for image in images]), 1):
        if progress:
            progress(f"fold {fold}/{folds}: training on {len(train)} images")
        model = build_model(recipe.architecture)
        train_model(model, recipe, inputs[train], labels[train], inputs[held_out], labels[held_out])
        probabilities = 1.0 / (1.0 + np.exp(-predict_logits(model, inputs[held_out]).astype(np.float64)))
        threshold = threshold_balanced(labels[held_out], probabilities).threshold
        row: dict[str, Any] = {"fold": fold, "train_images": len(train), "held_out_images": len(held_out),
                               **figures(labels[held_out], probabilities, threshold, resamples)}
        shifted_auc = {}
        for shift in shifts:
            shifted = shifted_inputs([xrays[i] for i in held_out], shift, recipe.input_size)
            scores = predict_logits(model, shifted)
            sensitivity, specificity = sensitivity_specificity(
                labels[held_out], 1.0 / (1.0 + np.exp(-scores.astype(np.float64))), threshold
            )
            shifted_auc[shift.name] = {"roc_auc": round(float(_auc(labels[held_out], scores)), 4),
                                       "sensitivity": round(sensitivity, 4), "specificity": round(specificity, 4)}
        if shifted_auc:
            row["shifts"] = shifted_auc
            row["worst_shift_roc_auc"] = min(v["roc_auc"] for v in shifted_auc.values())
        rows.append(row)
    return {"recipe": recipe.to_dict(), "folds": folds, "images": len(images), "summary": summarise_folds(rows),
            "per_fold": rows}


def summarise_folds(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Medians over the folds of a cross-validation (``per_fold`` rows): clean ROC-AUC, sensitivity and
    specificity, and per shift; the worst shift by median ROC-AUC, over every shift and over those a reading model
    must read (inverted renderings left out: the shipped model refuses them as outside its intended use)."""

    def median(values: Sequence[float] | np.ndarray) -> float:
        return round(float(np.median(values)), 4)

    aucs = np.array([row["roc_auc"] for row in rows])
    summary: dict[str, Any] = {
        "roc_auc_median": median(aucs),
        "roc_auc_mean": round(float(aucs.mean()), 4),
        "roc_auc_range": [round(float(aucs.min()), 4), round(float(aucs.max()), 4)],
        "sensitivity_median": median([row["sensitivity"]["value"] for row in rows]),
        "specificity_median": median([row["specificity"]["value"] for row in rows]),
    }
    if not all("shifts" in row for row in rows):
        return summary
    by_shift = {name: {key: median([row["shifts"][name][key] for row in rows])
                       for key in ("roc_auc", "sensitivity", "specificity")}
                for name in rows[0]["shifts"]}
    read = {name: values for name, values in by_shift.items()
            if _family(name) != "inversion"}
    worst = min(by_shift, key=lambda name: by_shift[name]["roc_auc"])
    worst_read = min(read, key=lambda name: read[name]["roc_auc"])
    summary.update({
        "worst_shift_roc_auc_median": median([row["worst_shift_roc_auc"] for row in rows]),
        "worst_shift": {"shift": worst, **by_shift[worst]},
        "worst_shift_excluding_inversion": {"shift": worst_read, **read[worst_read]},
        "median_over_shifts_excluding_inversion": {
            key: median([values[key] for values in read.values()]) for key in ("roc_auc", "sensitivity", "specificity")
        },
        "by_shift": by_shift,
    })
    return summary


def _family(shift_name: str) -> str:
    return next((shift.family for shift in SHIFT_SUITE if shift.name == shift_name), "")


def _auc(labels: np.ndarray, scores: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(labels, scores))


def _subset_by_group(dataset: FolderDataset, subset: int | None, seed: int) -> list[LabelledImage]:
    """Whole patient groups in a seeded random order until ``subset`` images are reached (all if None)."""
    if not subset or subset >= len(dataset.images):
        return list(dataset.images)
    groups = sorted({image.group for image in dataset.images})
    order = np.random.default_rng(seed).permutation(len(groups))
    by_group: dict[str, list[LabelledImage]] = {}
    for image in dataset.images:
        by_group.setdefault(image.group, []).append(image)
    chosen: list[LabelledImage] = []
    for index in order:
        chosen.extend(by_group[groups[index]])
        if len(chosen) >= subset:
            break
    return chosen
