"""``pneumodesk calibrate``: the same weights, with temperature and operating points refitted on labelled data."""

from __future__ import annotations

import argparse
import sys

from pneumodesk.model import ModelError, default_bundle_path, load_bundle
from pneumodesk.training import TrainingDataError
from pneumodesk.training.recalibration import recalibrate_bundle


def calibrate_command(args: argparse.Namespace) -> int:
    try:
        bundle = load_bundle(args.model or default_bundle_path())
        result = recalibrate_bundle(
            bundle, args.data, args.split, args.out, version=args.model_version, command=args.command_line
        )
    except (ModelError, TrainingDataError, ValueError) as error:
        print(f"pneumodesk calibrate: {error}", file=sys.stderr)
        return 2
    card = result.card
    print(f"calibrated bundle written to {args.out} (temperature {card.temperature:.3f}, bias {card.logit_bias:.3f})")
    for name, point in card.operating_points.items():
        print(f"  {name:<17} threshold {point.threshold:.3f}  sensitivity {point.sensitivity:.3f}  "
              f"specificity {point.specificity:.3f}")
    return 0
