"""Command-line entry points: ``pneumodesk`` (the desktop app; predict, train, evaluate) and ``pneumodesk-coordinator``.

Every start builds the whole parser, so building it must stay cheap: this module and the ``add_*_parser`` modules
import only the standard library and light constants (``training.recipe``); torch, numpy, the node stack
(SQLAlchemy, Alembic, argon2), the client and Qt load inside a command's run function. The test
``tests/unit/test_runtime_imports.py`` holds this for ``--version``, ``--help`` and every subcommand's ``--help``.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from pneumodesk import __version__
from pneumodesk.commands.accounts import add_accounts_parser
from pneumodesk.commands.approvals import add_approvals_parser
from pneumodesk.commands.audit import add_audit_parser
from pneumodesk.commands.datasets import add_datasets_parser
from pneumodesk.commands.demo import add_demo_parser
from pneumodesk.commands.node import add_node_parser
from pneumodesk.commands.pacs import add_pacs_parser
from pneumodesk.commands.policy import add_policy_parser
from pneumodesk.errors import PneumoDeskError
from pneumodesk.training.recipe import TrainingRecipe


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:  # plain `pneumodesk` (optionally with --home DIR) opens the desktop window
        args = parser.parse_args([*argv, "gui"])
    try:
        return int(args.run(args) or 0)
    except PneumoDeskError as error:  # a typed error no command handled (e.g. a node store that cannot be opened)
        print(f"pneumodesk: {error}", file=sys.stderr)
        return 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pneumodesk", description="On-device pneumonia detection on chest X-rays.")
    parser.add_argument("--version", action="version", version=f"PneumoDesk {__version__}")
    parser.add_argument(
        "--home", type=Path, metavar="DIR", help="app data folder: settings, verdicts, the node store "
        "(default: $PNEUMODESK_HOME, else the user data folder)"
    )
    commands = parser.add_subparsers(dest="command")

    gui = commands.add_parser("gui", help="open the desktop app (the default when no command is given)")
    gui.add_argument("--model", type=Path, metavar="BUNDLE", help="model bundle folder (default: the bundled model)")
    gui.add_argument(
        "--screenshots", type=Path, metavar="DIR", help="open the bundled samples, save each page as PNG in DIR, exit"
    )
    gui.set_defaults(run=_run_gui)

    predict = commands.add_parser("predict", help="predict pneumonia on X-ray files or folders")
    predict.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="file or folder (searched recursively)")
    predict.add_argument("--model", type=Path, help="model bundle folder (default: the bundled model)")
    predict.add_argument("--operating-point", help="decision threshold to use, e.g. balanced or high-sensitivity")
    predict.add_argument("--csv", type=Path, metavar="OUT", help="write path,probability,label,error rows to OUT")
    predict.add_argument("--json", action="store_true", help="print JSON instead of a table")
    predict.add_argument("--heatmap-dir", type=Path, metavar="DIR", help="write a Grad-CAM overlay PNG per image")
    predict.set_defaults(run=_run_predict)

    train = commands.add_parser("train", help="train a model bundle on a labelled dataset")
    train.add_argument("--data", type=Path, required=True, help="folder with NORMAL/ and PNEUMONIA/, or an .npz file")
    train.add_argument("--out", type=Path, required=True, metavar="BUNDLE_DIR")
    defaults = TrainingRecipe()
    train.add_argument("--arch", default=defaults.architecture, help=f"architecture (default {defaults.architecture})")
    train.add_argument("--input-size", type=int, default=defaults.input_size)
    train.add_argument("--epochs", type=int, default=defaults.epochs)
    train.add_argument("--batch-size", type=int, default=defaults.batch_size)
    train.add_argument("--lr", type=float, default=defaults.learning_rate)
    train.add_argument("--weight-decay", type=float, default=defaults.weight_decay)
    train.add_argument("--seed", type=int, default=defaults.seed)
    train.add_argument("--no-augment", action="store_true")
    train.add_argument(
        "--shift-augment", type=float, default=defaults.shift_augment, metavar="P",
        help="probability that a training image also gets a random acquisition shift "
        f"(default {defaults.shift_augment}, 0 = off)",
    )
    train.add_argument("--init-from", type=Path, metavar="BUNDLE",
                       help="start from this bundle's weights (same architecture and input size) instead of afresh")
    train.add_argument("--shift-inversion", action=argparse.BooleanOptionalAction, default=defaults.shift_inversion,
                       help="add inverted (MONOCHROME1-like) renderings to the shift-aware augmentation "
                       f"(default {'on' if defaults.shift_inversion else 'off'})")
    train.add_argument("--weight-averaging", type=float, default=defaults.weight_averaging, metavar="DECAY",
                       help="keep an exponential moving average of the weights with this decay per step and save it "
                       f"(default {defaults.weight_averaging}, 0 = off)")
    train.add_argument("--name", default="PneumoDesk pneumonia classifier")
    train.add_argument("--model-version", help="version string for the card (default: UTC date and time)")
    train.set_defaults(run=_run_train)

    evaluate = commands.add_parser("evaluate", help="measure a model bundle on a labelled dataset")
    evaluate.add_argument(
        "--data", type=Path, required=True, help="folder with NORMAL/ and PNEUMONIA/, or an .npz file"
    )
    evaluate.add_argument("--model", type=Path, help="model bundle folder (default: the bundled model)")
    evaluate.add_argument(
        "--split",
        choices=["all", "validation"],
        default="all",
        help="all images, or only the validation split recorded in the model card (same seed)",
    )
    evaluate.add_argument("--json", action="store_true", help="print the metrics as JSON")
    evaluate.set_defaults(run=_run_evaluate)
    calibrate = commands.add_parser(
        "calibrate", help="refit a bundle's calibration and operating points on labelled data (weights unchanged)"
    )
    source = calibrate.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", type=Path, help="folder with NORMAL/ and PNEUMONIA/, or an .npz")
    source.add_argument("--confirmed", action="store_true",
                        help="this node's confirmed cases (the prediction model, refitted; offered as a candidate "
                             "to accept with `pneumodesk models accept ID`; needs --user, approve_training)")
    calibrate.add_argument("--model", type=Path, help="model bundle folder (default: the bundled model)")
    calibrate.add_argument("--out", type=Path, metavar="BUNDLE_DIR", help="where to write the result (with --data)")
    calibrate.add_argument("--user", metavar="NAME", help="your account (with --confirmed)")
    calibrate.add_argument("--password-stdin", action="store_true", help="read your password from standard input")
    calibrate.add_argument("--split", choices=["all", "validation"], default="all",
                           help="all images (a hospital's own data), or the bundle's validation split")
    calibrate.add_argument("--model-version", help="version string for the new card (default: unchanged)")
    calibrate.set_defaults(run=_run_calibrate)

    add_accounts_parser(commands)
    add_audit_parser(commands)
    add_datasets_parser(commands)
    add_policy_parser(commands)
    add_approvals_parser(commands)
    add_node_parser(commands)
    add_pacs_parser(commands)
    add_demo_parser(commands)
    return parser


def _run_gui(args: argparse.Namespace) -> int:
    from pneumodesk.gui import run_gui

    return run_gui(model=args.model, screenshots=args.screenshots, home=args.home)


def _run_predict(args: argparse.Namespace) -> int:
    from pneumodesk.commands.predict import predict_command

    return predict_command(args)


def _run_train(args: argparse.Namespace) -> int:
    from pneumodesk.commands.train import train_command

    args.command_line = "pneumodesk " + shlex.join(sys.argv[1:]) if sys.argv[1:] else ""
    return train_command(args)


def _run_calibrate(args: argparse.Namespace) -> int:
    from pneumodesk.commands.calibrate import calibrate_command

    args.command_line = "pneumodesk " + shlex.join(sys.argv[1:]) if sys.argv[1:] else ""
    return calibrate_command(args)


def _run_evaluate(args: argparse.Namespace) -> int:
    from pneumodesk.commands.evaluate import evaluate_command

    return evaluate_command(args)


def coordinator_main(argv: Sequence[str] | None = None) -> int:
    """``pneumodesk-coordinator``: delegates to the coordinator's own CLI (imported lazily; Qt-free)."""
    from pneumodesk.coordinator.cli import main as run_coordinator

    return run_coordinator(argv)


if __name__ == "__main__":
    raise SystemExit(main())
