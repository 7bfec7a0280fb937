"""``pneumodesk train``: a labelled dataset in, a calibrated model bundle out, with a progress bar."""

from __future__ import annotations

import argparse
import sys

from tqdm import tqdm

from pneumodesk.model import ModelError
from pneumodesk.training import TrainingDataError, TrainingRecipe, train_bundle
from pneumodesk.training.trainer import EpochReport


class _Progress:
    """tqdm bars on stderr: one while images are read, one per epoch, a summary line after each epoch."""

    def __init__(self, epochs: int) -> None:
        self.epochs = epochs
        self.read_bar: tqdm | None = None
        self.epoch_bar: tqdm | None = None
        self.epochs_done = 0

    def image(self, count: int) -> None:
        if self.read_bar is None:
            self.read_bar = tqdm(desc="reading images", unit="img", file=sys.stderr, disable=None)
        self.read_bar.update(count)

    def batch(self, count: int, loss: float) -> None:
        if self.read_bar is not None:
            self.read_bar.close()
            self.read_bar = None
        if self.epoch_bar is None:
            description = f"epoch {self.epochs_done + 1}/{self.epochs}"
            self.epoch_bar = tqdm(desc=description, unit="img", file=sys.stderr, leave=False, disable=None)
        self.epoch_bar.update(count)
        self.epoch_bar.set_postfix(loss=f"{loss:.3f}")

    def epoch(self, report: EpochReport) -> None:
        if self.epoch_bar is not None:
            self.epoch_bar.close()
            self.epoch_bar = None
        self.epochs_done += 1
        tqdm.write(
            f"epoch {report.epoch:>3}/{self.epochs}  train loss {report.train_loss:.4f}  "
            f"validation loss {report.validation_loss:.4f}  AUC {report.validation_auc:.4f}  ({report.seconds:.0f} s)",
            file=sys.stderr,
        )


def train_command(args: argparse.Namespace) -> int:
    recipe = TrainingRecipe(
        architecture=args.arch,
        input_size=args.input_size,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        weight_decay=args.weight_decay,
        seed=args.seed,
        augment=not args.no_augment,
        shift_augment=args.shift_augment,
        shift_inversion=args.shift_inversion,
        weight_averaging=args.weight_averaging,
    )
    progress = _Progress(recipe.epochs)
    try:
        bundle = train_bundle(
            args.data,
            args.out,
            recipe,
            name=args.name,
            version=args.model_version,
            command=args.command_line,
            on_batch=progress.batch,
            on_epoch=progress.epoch,
            on_image=progress.image,
            init_from=args.init_from,
        )
    except (TrainingDataError, ModelError) as error:
        print(f"pneumodesk train: {error}", file=sys.stderr)
        return 2
    card = bundle.card
    low, high = card.validation["roc_auc_ci95"]
    print(f"model bundle written to {args.out}")
    print(
        f"validation ROC-AUC {card.validation['roc_auc']:.4f} (95% CI {low:.4f}-{high:.4f}) "
        f"on {card.validation['images']} images"
    )
    for name, point in card.operating_points.items():
        print(
            f"  {name:<17} threshold {point.threshold:.3f}  sensitivity {point.sensitivity:.3f}  "
            f"specificity {point.specificity:.3f}"
        )
    return 0
