"""From a labelled dataset on disk to a calibrated, documented model bundle (what ``pneumodesk train`` runs)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from pneumodesk.model import ModelBundle, ModelError, build_model, load_bundle

from .datasets import ArraySplit, load_model_inputs, load_npz, scan_folder
from .model_card import KERMANY_CITATIONS, calibrate_and_describe
from .operating_points import evidence_under_shifts, shifted_conditions
from .out_of_distribution import with_fitted_ood
from .shifts import shift_standardised
from .split import grouped_split
from .trainer import EpochReport, TrainingRecipe, predict_logits, train_model
from .yardstick import CLEAN


def shifted_copies_of_recipe(recipe: Mapping[str, object]) -> Callable[[np.ndarray], np.ndarray] | None:
    """For a recipe (as its card records it) trained with shift-aware augmentation: a function giving one shifted
    copy of every input, drawn as that augmentation draws (seeded by the recipe's seed); None otherwise."""
    probability = float(recipe.get("shift_augment", 0.0) or 0.0)  # type: ignore[arg-type]
    if probability <= 0:
        return None
    rng = np.random.default_rng(int(recipe.get("seed", 0) or 0))  # type: ignore[call-overload]
    inversion = bool(recipe.get("shift_inversion", False))
    return lambda inputs: shift_standardised(inputs, rng, probability=1.0, include_inversion=inversion)


def fit_ood_at_training_time(
    bundle: ModelBundle, prepared: PreparedData, conditions: dict[str, np.ndarray] | None = None
) -> ModelBundle:
    """The bundle with its out-of-distribution check fitted on the training side (with a shifted copy of each
    training image when the recipe trained on shifted images); the threshold is set on the validation images, clean
    and under every shift of the shift suite (``conditions``, computed if not given)."""
    calibration = conditions if conditions is not None else shifted_conditions(prepared.validation.inputs)
    return with_fitted_ood(bundle, prepared.train.inputs, prepared.train.labels, calibration,
                           prepared.validation.labels, clean=CLEAN,
                           shifted_copies=shifted_copies_of_recipe(bundle.card.training.get("recipe", {})))


def describe_trained_model(
    model: torch.nn.Module, recipe: TrainingRecipe, prepared: PreparedData, *, name: str, version: str,
    training: dict[str, object],
) -> ModelBundle:
    """A trained network made into a bundle: temperature on the clean validation split, operating points on the
    validation images pooled clean and under the shift suite, out-of-distribution check fitted (not saved)."""
    conditions = shifted_conditions(prepared.validation.inputs)
    card = calibrate_and_describe(
        recipe,
        prepared.validation.labels,
        predict_logits(model, prepared.validation.inputs),
        name=name,
        version=version,
        validation={"split": prepared.description["split"]},
        training=training,
        thresholds_on=evidence_under_shifts(model, conditions, prepared.validation.labels),
    )
    return fit_ood_at_training_time(ModelBundle.from_model(model, card), prepared, conditions)


@dataclass(frozen=True)
class PreparedData:
    train: ArraySplit
    validation: ArraySplit
    description: dict[str, object]
    unreadable: list[tuple[Path, str]]


def prepare_data(data: Path, input_size: int, seed: int, progress: Callable[[int], None] | None = None) -> PreparedData:
    """Read, preprocess and split. A folder is split by patient (seeded); an npz keeps its own train/val split."""
    if data.suffix == ".npz":
        train, validation = load_npz(data, input_size)
        return PreparedData(train, validation, {"source": data.name, "split": "the npz file's own train/val split"}, [])
    dataset = scan_folder(data)
    inputs, unreadable = load_model_inputs([image.path for image in dataset.images], input_size, progress=progress)
    bad = {path for path, _ in unreadable}
    kept = [image for image in dataset.images if image.path not in bad]
    labels = np.array([image.label for image in kept], dtype=np.int64)
    train_index, validation_index = grouped_split(labels, [image.group for image in kept], seed=seed)
    description: dict[str, object] = {
        "source": data.name,
        "split": f"patient/study-grouped, stratified, 1 fold of 10 (sklearn StratifiedGroupKFold, seed {seed}); "
        "byte-identical files grouped together",
        "train_images": len(train_index),
        "patients_or_studies": len({image.group for image in kept}),
    }
    return PreparedData(
        ArraySplit(inputs[train_index], labels[train_index]),
        ArraySplit(inputs[validation_index], labels[validation_index]),
        description,
        unreadable,
    )


def train_bundle(
    data: Path,
    out: Path,
    recipe: TrainingRecipe,
    *,
    name: str = "PneumoDesk pneumonia classifier",
    version: str | None = None,
    command: str = "",
    on_batch: Callable[[int, float], None] | None = None,
    on_epoch: Callable[[EpochReport], None] | None = None,
    on_image: Callable[[int], None] | None = None,
    init_from: Path | None = None,
) -> ModelBundle:
    """Train, calibrate on the validation split, and save a bundle in ``out``. Deterministic for a seed.

    ``init_from``: a bundle of the same architecture and input size whose weights training starts from (fine-tuning
    an earlier model of this project with a new recipe) instead of a fresh initialisation; the card names it."""
    torch.manual_seed(recipe.seed)
    started = time.time()
    start = load_bundle(init_from) if init_from is not None else None
    if start is not None and (start.card.architecture, start.card.input_size) != (recipe.architecture,
                                                                                   recipe.input_size):
        raise ModelError(f"The model in {init_from} is a {start.card.architecture} at {start.card.input_size} px; "
                         f"it cannot be the starting point of a {recipe.architecture} at {recipe.input_size} px.")
    prepared = prepare_data(data, recipe.input_size, recipe.seed, on_image)
    model = build_model(recipe.architecture) if start is None else start.build()
    reports = train_model(
        model,
        recipe,
        prepared.train.inputs,
        prepared.train.labels,
        prepared.validation.inputs,
        prepared.validation.labels,
        on_batch=on_batch,
        on_epoch=on_epoch,
    )
    duration = time.time() - started
    training: dict[str, object] = {
        "data": f"{data.parent.name}/{data.name}",
        "citation": KERMANY_CITATIONS,
        "recipe": recipe.to_dict(),
        **({"initialised_from": {"name": start.card.name, "version": start.card.version,
                                 "weights_sha256": start.card.weights_sha256}} if start is not None else {}),
        "command": command,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "duration_seconds": round(duration, 1),
        "train_images": len(prepared.train.labels),
        "unreadable_images": len(prepared.unreadable),
        "history": [
            {"epoch": r.epoch, "train_loss": round(r.train_loss, 4), "validation_auc": round(r.validation_auc, 4)}
            for r in reports
        ],
    }
    bundle = describe_trained_model(
        model, recipe, prepared, name=name, version=version or time.strftime("%Y.%m.%d-%H%M", time.gmtime()),
        training=training,
    )
    bundle.save(out)
    return load_bundle(out)  # as written, with the weights' sha256 in its card
