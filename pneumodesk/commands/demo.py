"""``pneumodesk demo federation``: a complete federation on this machine, then federated vs centralised figures.

What happens (all over TLS on 127.0.0.1, through the same code paths as a real deployment):
1. ``pneumodesk-coordinator init`` into a temporary folder with a freshly initialised ``DEMO_ARCHITECTURE`` model,
   then ``serve`` as a subprocess;
2. H hospital nodes, each its own node home with an Owner account, enrol with a one-time code and the pinned CA;
   the operator approves them; each registers its non-IID share of the training data as a dataset (a folder of
   PNGs for an npz, a CSV of the original files for a NORMAL/PNEUMONIA folder — nothing copied then), sets a policy
   that allows the plan (secure aggregation on, as by default, with two or more hospitals), and its Owner approves the
   published plan by hash with its ε worked out;
3. the nodes run their participation engines in threads of this process (one process keeps torch loaded once —
   fastest on a 2-core machine) for N rounds;
4. the same plan is trained centrally on the union of the hospitals' training images with the same privacy budget
   (rounds × local epochs in one run, DP calibrated to the same ε) from the same initial weights;
5. both models are scored on validation images no hospital trained on (the npz's own validation split, or a
   patient-grouped 1/7 of the folder).
The last line printed is one JSON object (see ``_figures``). Progress goes to standard error.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

DEFAULT_EPSILON = 8.0


def add_demo_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    demo = commands.add_parser("demo", help="demonstrations that run entirely on this machine")
    kinds = demo.add_subparsers(dest="demo_command", required=True)
    federation = kinds.add_parser("federation", help="a coordinator and H hospitals on 127.0.0.1: federated vs "
                                  "centralised training; prints one JSON line last")
    federation.add_argument("--hospitals", type=int, default=3, metavar="H")
    federation.add_argument("--rounds", type=int, default=3, metavar="N")
    federation.add_argument("--data", type=Path, metavar="PATH",
                            help="NORMAL/PNEUMONIA folder or PneumoniaMNIST-style npz (default: the shipped demo data)")
    federation.add_argument("--dp-epsilon", type=float, default=DEFAULT_EPSILON, metavar="E",
                            help=f"total ε per hospital for the whole plan (default {DEFAULT_EPSILON:g}; 0 = no DP)")
    federation.add_argument("--local-epochs", type=int, default=1)
    federation.add_argument("--batch-size", type=int, default=64)
    federation.add_argument("--learning-rate", type=float, default=2e-3)
    federation.add_argument("--seed", type=int, default=20261127)
    federation.add_argument("--workdir", type=Path, help="keep every folder here (default: a temporary folder)")
    federation.add_argument("--drop-after-masking", type=int, default=0, metavar="K",
                            help="K hospitals vanish right after sending their masked input in the last round; the "
                            "round still completes (the others must be a strict majority of H)")
    federation.add_argument("--timeout", type=float, default=3600.0, help="give up after this many seconds")
    federation.set_defaults(run=demo_command)


def demo_command(args: argparse.Namespace) -> int:
    from pneumodesk.client.errors import ClientError
    from pneumodesk.commands.demo_federation import run_federation_demo
    from pneumodesk.node import NodeError
    from pneumodesk.training.datasets import TrainingDataError

    missing = _why_no_local_coordinator()
    if missing:
        print(f"pneumodesk demo: {missing}", file=sys.stderr)
        return 2
    if args.hospitals < 1 or args.rounds < 1:
        print("pneumodesk demo: --hospitals and --rounds must be at least 1.", file=sys.stderr)
        return 2
    drop = args.drop_after_masking
    if drop < 0 or (drop and (args.hospitals < 2 or args.hospitals - drop < args.hospitals // 2 + 1)):
        print(f"pneumodesk demo: --drop-after-masking must leave a strict majority of the {args.hospitals} "
              f"hospitals (at most {max(0, args.hospitals - args.hospitals // 2 - 1)}).", file=sys.stderr)
        return 2
    try:
        figures = run_federation_demo(args)
    except (ClientError, NodeError, TrainingDataError, TimeoutError) as error:
        print(f"pneumodesk demo: {error}", file=sys.stderr)
        return 1
    import json

    print(json.dumps(figures, sort_keys=False), flush=True)
    return 0 if figures["rounds_completed"] == args.rounds else 1


def _why_no_local_coordinator() -> str:
    """Why this install cannot run a coordinator beside the demo hospitals ('' when it can).

    The demo starts ``python -m pneumodesk.coordinator.cli``: a frozen workstation app has no Python to run it
    with (``sys.executable`` is PneumoDesk itself) and ships without the coordinator's server libraries.
    """
    needs = ("needs a development install of PneumoDesk with the coordinator extra "
             "(pip install 'pneumodesk[coordinator]')")
    if getattr(sys, "frozen", False):
        return f"the federation demo {needs}; the installed workstation app does not include a coordinator."
    import importlib.util

    if any(importlib.util.find_spec(name) is None for name in ("fastapi", "uvicorn")):
        return f"the federation demo {needs}."
    return ""
