"""The generalisation yardstick. Prints JSON.

Shift suite (default): the bundle's patient-grouped validation images (carved from --data exactly as its training
did, same seed) under each acquisition shift of ``pneumodesk.training.shifts.SHIFT_SUITE``; ROC-AUC with a bootstrap
95 % CI and sensitivity/specificity at the shipped operating point (bootstrap medians and CIs), and the worst case.

    .venv/bin/python benchmarks/shift_suite.py [--data ../shared/data/kermany224/train] [--model BUNDLE] [--limit 200]

Several bundles in one run (e.g. the old and the new default): repeat --model; each is scored at its own operating
point, and a side-by-side summary (clean ROC-AUC, worst shift, sensitivity/specificity per shift) comes first.

Cross-validation (trains one model per fold; size it with --folds, --epochs, --subset):

    .venv/bin/python benchmarks/shift_suite.py --kfold 5 --epochs 20 [--subset 800] [--architecture pneumonet-s]
        [--input-size 224] [--with-shifts] [--shift-augment 0] [--no-shift-inversion]

Side by side, from saved cross-validation reports (e.g. the recipe before and after): per report the recipe and the
fold medians, clean and per shift, and the worst shift with and without inverted renderings:

    .venv/bin/python benchmarks/shift_suite.py --compare-kfold old.json --compare-kfold new.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any

import torch

from pneumodesk.model import load_bundle
from pneumodesk.model.default import default_bundle_path
from pneumodesk.training.recipe import TrainingRecipe
from pneumodesk.training.shifts import SHIFT_SUITE, shift_by_name
from pneumodesk.training.yardstick import (
    bundle_seed,
    cross_validate,
    shift_suite,
    summarise_folds,
    validation_xrays,
)


def side_by_side(reports: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Per bundle: clean and worst ROC-AUC, and ROC-AUC / sensitivity / specificity at its operating point per
    condition (values only; the CIs are in each bundle's own report)."""
    summary: dict[str, Any] = {}
    for path, report in reports.items():
        rows = report["conditions"]
        clean = next(iter(rows.values()))
        summary[path] = {
            "model_version": report["model_version"],
            "threshold": round(report["operating_point"]["threshold"], 4),
            "clean_roc_auc": clean["roc_auc"], "clean_roc_auc_ci95": clean["roc_auc_ci95"],
            "worst_case": report["worst_case"], "median_over_shifts": report["median_over_shifts"],
            "by_condition": {name: [row["roc_auc"], row["sensitivity"]["value"], row["specificity"]["value"]]
                             for name, row in rows.items()},
            "by_condition_columns": ["roc_auc", "sensitivity", "specificity"],
        }
    return summary


def compare_cross_validations(paths: list[Path]) -> dict[str, Any]:
    """Saved k-fold reports side by side: recipe, scale and the fold medians (recomputed from the folds)."""
    compared: dict[str, Any] = {}
    for path in paths:
        report = json.loads(path.read_text(encoding="utf-8"))
        compared[str(path)] = {"recipe": report["recipe"], "folds": report["folds"], "images": report["images"],
                               "summary": summarise_folds(report["per_fold"])}
    return {"cross_validations_side_by_side": compared}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/kermany224/train"))
    parser.add_argument("--model", type=Path, action="append",
                        help="model bundle (default: the bundled model); repeat to compare bundles in one run")
    parser.add_argument("--limit", type=int, default=None, help="at most this many validation images (stratified)")
    parser.add_argument("--shift", action="append", help="only these shifts (by name; repeatable)")
    parser.add_argument("--operating-point", default="balanced")
    parser.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples for the CIs")
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    parser.add_argument("--kfold", type=int, default=0, help="run K-fold cross-validation instead (trains K models)")
    parser.add_argument("--epochs", type=int, default=TrainingRecipe.epochs)
    parser.add_argument("--subset", type=int, default=None, help="cross-validate on about this many images")
    parser.add_argument("--architecture", default=TrainingRecipe.architecture)
    parser.add_argument("--input-size", type=int, default=TrainingRecipe.input_size)
    parser.add_argument("--with-shifts", action="store_true", help="also score each fold's model under the shifts")
    parser.add_argument("--shift-augment", type=float, default=TrainingRecipe.shift_augment,
                        help="the recipe's shift-aware augmentation probability (0 = the recipe before it)")
    parser.add_argument("--shift-inversion", action=argparse.BooleanOptionalAction,
                        default=TrainingRecipe.shift_inversion,
                        help="include inverted (MONOCHROME1-like) renderings in the shift-aware augmentation")
    parser.add_argument("--compare-kfold", type=Path, action="append", default=[],
                        help="a saved cross-validation report; repeat to print them side by side (trains nothing)")
    args = parser.parse_args()

    shifts = [shift_by_name(name) for name in args.shift] if args.shift else list(SHIFT_SUITE)
    started = time.perf_counter()

    def progress(message: str) -> None:
        print(f"[{time.perf_counter() - started:6.1f} s] {message}", file=sys.stderr, flush=True)

    if args.compare_kfold:
        report = compare_cross_validations(args.compare_kfold)
    elif args.kfold:
        recipe = dataclasses.replace(
            TrainingRecipe(), epochs=args.epochs, architecture=args.architecture, input_size=args.input_size,
            shift_augment=args.shift_augment, shift_inversion=args.shift_inversion,
        )
        report = cross_validate(args.data, recipe, folds=args.kfold, subset=args.subset,
                                shifts=shifts if args.with_shifts else (), resamples=args.resamples,
                                progress=progress)
    else:
        reports: dict[str, dict[str, Any]] = {}
        for path in args.model or [default_bundle_path()]:
            bundle = load_bundle(path)
            images = validation_xrays(args.data, bundle_seed(bundle), args.limit)
            progress(f"{path}: model {bundle.card.version}")
            reports[str(path)] = shift_suite(bundle, images, shifts=shifts, operating_point=args.operating_point,
                                             resamples=args.resamples, progress=progress)
        report = next(iter(reports.values())) if len(reports) == 1 else {
            "side_by_side": side_by_side(reports), "models": reports}
    report = {"data": str(args.data), "torch_threads": torch.get_num_threads(),
              "seconds": round(time.perf_counter() - started, 1), **report}
    text = json.dumps(report, indent=2, ensure_ascii=False)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
