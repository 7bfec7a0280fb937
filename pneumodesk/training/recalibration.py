"""Refit a bundle's calibration and operating points on labelled data, keeping its weights.

Used when the operating-point rules change, and by a hospital that wants thresholds fitted to its own images.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from pneumodesk.model import ModelBundle, load_bundle

from .evaluation import labelled_inputs
from .model_card import calibrate_and_describe
from .trainer import TrainingRecipe, predict_logits


def recalibrate_bundle(
    bundle: ModelBundle, data: Path, split: str, out: Path, *, version: str | None = None, command: str = ""
) -> ModelBundle:
    """Write to ``out`` the same weights with temperature, operating points and validation figures from ``data``."""
    inputs, labels, unreadable = labelled_inputs(bundle, data, split)
    if len(set(labels.tolist())) < 2:
        raise ValueError("Calibration needs images of both classes (NORMAL and PNEUMONIA).")
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
