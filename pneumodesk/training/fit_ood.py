"""Fit a bundle's out-of-distribution check on its own training data and write it into the bundle (weights untouched).

    python -m pneumodesk.training.fit_ood --data ../shared/data/kermany224/train --model resources/models/default

The training images are split exactly as the bundle's training did (its recipe's seed); the statistics come from the
training side, the threshold from the validation side: clean, and under every shift of the shift suite (applied to
the decoded images, as ``benchmarks/shift_suite.py`` does) on which the model still reaches its ROC-AUC floor.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from pneumodesk.model import load_bundle

from .out_of_distribution import (
    DEFAULT_METHOD,
    DEFAULT_REFUSE_AT_MOST,
    DEFAULT_REFUSE_AT_MOST_PER_SHIFT,
    METHODS,
    with_fitted_ood,
)
from .pipeline import prepare_data, shifted_copies_of_recipe
from .shifts import SHIFT_SUITE
from .yardstick import CLEAN, bundle_seed, shifted_inputs, validation_xrays


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="the labelled folder the bundle was trained on")
    parser.add_argument("--model", type=Path, required=True, help="the bundle folder to update in place")
    parser.add_argument("--method", choices=METHODS, default=DEFAULT_METHOD)
    parser.add_argument("--refuse-at-most", type=float, default=DEFAULT_REFUSE_AT_MOST,
                        help="share of the clean, and of the pooled shifted, validation X-rays refused at most")
    parser.add_argument("--refuse-at-most-per-shift", type=float, default=DEFAULT_REFUSE_AT_MOST_PER_SHIFT)
    args = parser.parse_args(argv)

    bundle = load_bundle(args.model)
    seed, size = bundle_seed(bundle), bundle.card.input_size
    print("reading and splitting the training data", file=sys.stderr, flush=True)
    prepared = prepare_data(args.data, size, seed)
    images = validation_xrays(args.data, seed)
    if not np.array_equal(images.labels, prepared.validation.labels):
        raise SystemExit("The validation split could not be reproduced (were some images unreadable?).")
    calibration = {CLEAN: prepared.validation.inputs}
    for shift in SHIFT_SUITE:
        calibration[shift.name] = shifted_inputs(images.xrays, shift, size)
    print(f"fitting on {len(prepared.train.labels)} training images, threshold on {len(calibration)} conditions of "
          f"{len(images.labels)} validation images", file=sys.stderr, flush=True)
    fitted = with_fitted_ood(
        bundle, prepared.train.inputs, prepared.train.labels, calibration, images.labels, method=args.method,
        refuse_at_most=args.refuse_at_most, refuse_at_most_per_shift=args.refuse_at_most_per_shift, clean=CLEAN,
        shifted_copies=shifted_copies_of_recipe(bundle.card.training.get("recipe", {})),
        description={"command": "python -m pneumodesk.training.fit_ood --data ../shared/data/kermany224/train "
                                f"--model resources/models/default --method {args.method}",
                     "calibration_images": f"{len(images.labels)} validation images × {len(calibration)} conditions"},
    )
    fitted.save(args.model)
    check = load_bundle(args.model)
    assert check.card.weights_sha256 == bundle.card.weights_sha256, "the weights must not change"
    print(f"wrote {args.model}: threshold {check.card.out_of_distribution['threshold']:.2f} "
          f"({args.method})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
