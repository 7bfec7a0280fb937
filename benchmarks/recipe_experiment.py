"""A short training-recipe experiment scored on the shift suite: the same small recipe trained with and without
shift-aware augmentation (``shifts.shift_standardised``), each calibrated on the validation split exactly as
``pneumodesk train`` does, then measured clean and under every shift at its own balanced operating point. Prints JSON.
Figures only: nothing is written to any bundle.

    .venv/bin/python benchmarks/recipe_experiment.py [--data ../shared/data/kermany224/train] [--input-size 64]
        [--architecture pneumonet-s] [--epochs 8] [--subset 1500] [--shift-probability 0.5] [--limit 300]
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import sys
import time
from pathlib import Path
from typing import Any

import torch

from pneumodesk.model import ModelBundle, build_model
from pneumodesk.training.model_card import calibrate_and_describe
from pneumodesk.training.pipeline import prepare_data
from pneumodesk.training.recipe import TrainingRecipe
from pneumodesk.training.shifts import shift_standardised
from pneumodesk.training.trainer import predict_logits, train_model
from pneumodesk.training.yardstick import shift_suite, stratified_subset, validation_xrays


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/kermany224/train"))
    parser.add_argument("--input-size", type=int, default=64)
    parser.add_argument("--architecture", default="pneumonet-s")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--subset", type=int, default=1500, help="training images used (stratified, seeded)")
    parser.add_argument("--shift-probability", type=float, default=0.5)
    parser.add_argument("--limit", type=int, default=None, help="validation images scored under the shifts")
    parser.add_argument("--resamples", type=int, default=500)
    args = parser.parse_args()
    started = time.perf_counter()

    def log(message: str) -> None:
        print(f"[{time.perf_counter() - started:6.1f} s] {message}", file=sys.stderr, flush=True)

    recipe = dataclasses.replace(TrainingRecipe(), architecture=args.architecture, input_size=args.input_size,
                                 epochs=args.epochs)
    prepared = prepare_data(args.data, recipe.input_size, recipe.seed)
    _, kept = stratified_subset(prepared.train.labels, args.subset, recipe.seed)
    train_inputs, train_labels = prepared.train.inputs[kept], prepared.train.labels[kept]
    images = validation_xrays(args.data, recipe.seed, args.limit)
    variants: dict[str, Any] = {
        "baseline (recipe augmentation)": None,
        f"+ shift-aware augmentation (p {args.shift_probability})": functools.partial(
            shift_standardised, probability=args.shift_probability),
    }
    results: dict[str, Any] = {}
    for name, extra in variants.items():
        log(f"training: {name}")
        torch.manual_seed(recipe.seed)
        model = build_model(recipe.architecture)
        train_model(model, recipe, train_inputs, train_labels, prepared.validation.inputs, prepared.validation.labels,
                    extra_augment=extra)
        logits = predict_logits(model, prepared.validation.inputs)
        card = calibrate_and_describe(recipe, prepared.validation.labels, logits, name=name, version="experiment",
                                      validation={}, training={"recipe": recipe.to_dict()})
        log(f"shift suite: {name}")
        suite = shift_suite(ModelBundle.from_model(model, card), images, resamples=args.resamples)
        results[name] = {
            "clean": suite["conditions"][next(iter(suite["conditions"]))],
            "worst_case": suite["worst_case"],
            "median_over_shifts": suite["median_over_shifts"],
            "roc_auc_by_shift": {shift: row["roc_auc"] for shift, row in suite["conditions"].items()},
        }
    report = {"recipe": recipe.to_dict(), "train_images": len(train_labels), "validation_images": len(images.labels),
              "seconds": round(time.perf_counter() - started, 1), "variants": results}
    print(json.dumps(report, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
