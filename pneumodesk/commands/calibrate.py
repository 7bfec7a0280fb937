"""``pneumodesk calibrate``: the same weights, with temperature and operating points refitted on labelled data — a
folder or .npz (``--data``, written to ``--out``), or this node's confirmed cases (``--confirmed``: the prediction
model refitted and offered as a candidate in the local model registry)."""

from __future__ import annotations

import argparse
import sys

from pneumodesk.model import ModelError, default_bundle_path, load_bundle
from pneumodesk.training import TrainingDataError
from pneumodesk.training.recalibration import recalibrate_bundle


def calibrate_command(args: argparse.Namespace) -> int:
    if args.confirmed:
        return _calibrate_confirmed(args)
    if args.out is None:
        print("pneumodesk calibrate: --out is needed with --data", file=sys.stderr)
        return 2
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


def _calibrate_confirmed(args: argparse.Namespace) -> int:
    from pneumodesk.client.confirmed_cases import recalibrate_on_confirmed
    from pneumodesk.commands.datasets import run_node_command, signed_in
    from pneumodesk.errors import PneumoDeskError

    if not args.user:
        print("pneumodesk calibrate: --confirmed needs --user (an account with approve_training)", file=sys.stderr)
        return 2

    def body(args: argparse.Namespace) -> int:
        with signed_in(args) as (node, actor):
            try:
                offer = recalibrate_on_confirmed(node, actor, command=args.command_line)
            except (PneumoDeskError, ValueError) as error:
                print(f"pneumodesk calibrate: {error}", file=sys.stderr)
                return 1
        before, after = offer.recalibration.before, offer.recalibration.after
        print(f"Recalibrated on {after['images']} confirmed case(s) ({after['normal']} normal, "
              f"{after['pneumonia']} pneumonia); {len(offer.refused) + offer.recalibration.unreadable} refused.")
        for path, reason in offer.refused:
            print(f"  refused: {path}: {reason}")
        print(f"{'figure':<28} {'before':>8} {'after':>8}")
        for key in sorted(set(before) | set(after)):
            print(f"{key:<28} {before.get(key, float('nan')):>8.3f} {after.get(key, float('nan')):>8.3f}")
        print(f"Offered as candidate model {offer.candidate.id} ({offer.candidate.model_version}); accept it with "
              f"`pneumodesk models accept {offer.candidate.id}` or on the Models page.")
        return 0

    return run_node_command("calibrate", body, args)
