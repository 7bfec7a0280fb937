"""Refit a bundle's calibration and operating points on labelled data, keeping its weights.

Used when the operating-point rules change, and by a hospital that wants thresholds fitted to its own images.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pneumodesk.model import ModelBundle, ModelCard, load_bundle
from pneumodesk.model.curves import model_curves

from .datasets import TrainingDataError, load_model_inputs
from .evaluation import labelled_inputs
from .metrics import expected_calibration_error
from .model_card import calibrate_and_describe
from .trainer import TrainingRecipe, predict_logits

#: The fewest readable images of EACH class that a recalibration is fitted on. With fewer, the thresholds follow
#: chance: at 20 cases a class, a sensitivity or specificity measured on them has a 95 % interval about ±0.2 wide
#: (Wilson), and a handful of perfectly separated images would put the balanced threshold wherever the few lowest
#: pneumonia scores happen to fall. A clinician must never be offered thresholds fitted on less.
MIN_CASES_PER_CLASS = 20


class TooFewCasesError(TrainingDataError):
    """Fewer than ``MIN_CASES_PER_CLASS`` readable images of a class to recalibrate on; ``str(error)`` says so."""


def require_enough_cases(labels: np.ndarray, *, what: str, where: str, left_out: int = 0) -> None:
    """Raise ``TooFewCasesError`` unless ``labels`` (1 = pneumonia) hold ``MIN_CASES_PER_CLASS`` of each class;
    ``what`` names the images ("confirmed", "readable"), ``where`` where they are ("this workstation"),
    ``left_out`` how many were not counted (changed, moved or unreadable files)."""
    labels = np.asarray(labels)
    normal, pneumonia = int((labels == 0).sum()), int((labels == 1).sum())
    if min(normal, pneumonia) < MIN_CASES_PER_CLASS:
        more = f" ({left_out} more left out: changed, moved or unreadable files)" if left_out else ""
        raise TooFewCasesError(
            f"Recalibration needs at least {MIN_CASES_PER_CLASS} {what} normal and {MIN_CASES_PER_CLASS} {what} "
            f"pneumonia cases; {where} has {normal} and {pneumonia}{more}. Thresholds fitted on fewer would "
            "follow chance.")


def recalibrate_bundle(
    bundle: ModelBundle, data: Path, split: str, out: Path, *, version: str | None = None, command: str = ""
) -> ModelBundle:
    """Write to ``out`` the same weights with temperature, operating points and validation figures from ``data``."""
    inputs, labels, unreadable = labelled_inputs(bundle, data, split)
    chosen = "the validation split of " if split == "validation" else ""
    require_enough_cases(labels, what="readable", where=f"{chosen}{data.name}", left_out=len(unreadable))
    card = bundle.card
    recipe_fields = TrainingRecipe.__dataclass_fields__
    recipe = TrainingRecipe(**{k: v for k, v in card.training.get("recipe", {}).items() if k in recipe_fields})
    recipe = dataclasses.replace(recipe, architecture=card.architecture, input_size=card.input_size)
    split_text = card.validation.get("split", "") if split == "validation" else "all images of the calibration data"
    training = {
        **card.training,
        "calibration": {"data": f"{data.parent.name}/{data.name}", "split": split, "command": command,
                        "unreadable_images": len(unreadable)},
    }
    new_card = calibrate_and_describe(
        recipe, labels, predict_logits(bundle.build(), inputs),
        name=card.name, version=version or card.version, validation={"split": split_text}, training=training,
    )
    # Same weights, same features: the out-of-distribution check carries over unchanged.
    new_card = new_card.with_updates(parameters=card.parameters, out_of_distribution=card.out_of_distribution)
    ModelBundle(new_card, bundle.state_dict, bundle.ood).save(out)
    return load_bundle(out)


@dataclass(frozen=True)
class LocalRecalibration:
    """A recalibrated bundle written to ``out`` and the figures of the old and the new thresholds on the same images.

    ``before`` and ``after`` use the keys the Models page shows (``threshold``, ``sensitivity`` and ``specificity``
    at the default operating point, ``expected_calibration_error``, counts) plus ``<point> threshold`` for every
    operating point, so an admin sees what changes before accepting it. ``curves_before`` and ``curves_after`` are
    the curves of the same predictions under each calibration (``ModelCurves.to_json_dict``), which the Models page
    draws overlaid."""

    bundle: ModelBundle
    before: dict[str, float | int]
    after: dict[str, float | int]
    unreadable: int
    curves_before: dict[str, Any]
    curves_after: dict[str, Any]


def operating_figures(card: ModelCard, labels: np.ndarray, logits: np.ndarray) -> dict[str, float | int]:
    """``card``'s calibration and operating points applied to ``logits``, measured against ``labels``."""
    probabilities = card.calibrate(logits)
    _, point = card.operating_point(None)
    positive = probabilities >= point.threshold
    pneumonia, normal = labels == 1, labels == 0
    figures: dict[str, float | int] = {
        "images": len(labels), "normal": int(normal.sum()), "pneumonia": int(pneumonia.sum()),
        "threshold": round(float(point.threshold), 4),
        "expected_calibration_error": round(expected_calibration_error(labels, probabilities), 4),
    }
    if pneumonia.any():
        figures["sensitivity"] = round(float(positive[pneumonia].mean()), 4)
    if normal.any():
        figures["specificity"] = round(float((~positive[normal]).mean()), 4)
    for other, other_point in sorted(card.operating_points.items()):
        figures[f"{other} threshold"] = round(float(other_point.threshold), 4)
    return figures


def operating_curves(card: ModelCard, labels: np.ndarray, logits: np.ndarray) -> dict[str, Any]:
    """The curves of ``card``'s calibrated probabilities of ``logits`` against ``labels``, every operating point
    marked, the confusion counts at its default one."""
    marks = {name: point.threshold for name, point in card.operating_points.items()}
    return model_curves(labels, card.calibrate(logits), marks, card.default_operating_point).to_json_dict()


def recalibrate_on_images(bundle: ModelBundle, files: list[tuple[Path, int]], out: Path, *, version: str,
                          source: str, command: str = "") -> LocalRecalibration:
    """Refit temperature and operating points on ``files`` ((path, label 1 = pneumonia), e.g. a hospital's confirmed
    cases, all of them) and write the same weights with the new card to ``out``."""
    inputs, unreadable = load_model_inputs([path for path, _ in files], bundle.card.input_size)
    bad = {path for path, _ in unreadable}
    labels = np.array([label for path, label in files if path not in bad], dtype=np.int64)
    require_enough_cases(labels, what="readable", where=source, left_out=len(unreadable))
    card = bundle.card
    logits = predict_logits(bundle.build(), inputs)
    recipe_fields = TrainingRecipe.__dataclass_fields__
    recipe = TrainingRecipe(**{k: v for k, v in card.training.get("recipe", {}).items() if k in recipe_fields})
    recipe = dataclasses.replace(recipe, architecture=card.architecture, input_size=card.input_size)
    training = {**card.training, "calibration": {"data": source, "split": "all", "command": command,
                                                 "unreadable_images": len(unreadable)}}
    new_card = calibrate_and_describe(recipe, labels, logits, name=card.name, version=version,
                                      validation={"split": f"all images of {source}"}, training=training)
    # Same weights, same features: the out-of-distribution check carries over unchanged (without it an accepted
    # recalibration would give a probability to images outside the intended use).
    new_card = new_card.with_updates(parameters=card.parameters, out_of_distribution=card.out_of_distribution)
    ModelBundle(new_card, bundle.state_dict, bundle.ood).save(out)
    written = load_bundle(out)
    return LocalRecalibration(written, operating_figures(card, labels, logits),
                              operating_figures(written.card, labels, logits), len(unreadable),
                              operating_curves(card, labels, logits), operating_curves(written.card, labels, logits))
