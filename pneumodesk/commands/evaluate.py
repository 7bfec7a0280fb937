"""``pneumodesk evaluate``: a model bundle's ROC-AUC (95 % CI), sensitivity/specificity and calibration on data."""

from __future__ import annotations

import argparse
import json
import sys

from pneumodesk.model import ModelError, default_bundle_path, load_bundle
from pneumodesk.training import TrainingDataError
from pneumodesk.training.evaluation import evaluate_bundle


def evaluate_command(args: argparse.Namespace) -> int:
    try:
        bundle = load_bundle(args.model or default_bundle_path())
        metrics = evaluate_bundle(bundle, args.data, args.split)
    except (ModelError, TrainingDataError, ValueError) as error:
        print(f"pneumodesk evaluate: {error}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(metrics, indent=2))
        return 0
    low, high = metrics["roc_auc_ci95"]
    print(
        f"model {metrics['model_version']} on {metrics['data']} ({metrics['split']}): {metrics['images']} images, "
        f"{metrics['pneumonia']} pneumonia, {metrics['normal']} normal, {len(metrics['unreadable'])} unreadable"
    )
    print(f"ROC-AUC {metrics['roc_auc']:.4f} (95% CI {low:.4f}-{high:.4f})")
    print(f"expected calibration error {metrics['expected_calibration_error']:.4f}")
    for name, point in metrics["operating_points"].items():
        print(
            f"  {name:<17} threshold {point['threshold']:.3f}  sensitivity {point['sensitivity']:.3f}  "
            f"specificity {point['specificity']:.3f}"
        )
    return 0
