"""Federated (H non-IID hospitals, in-process FedAvg) vs centralised training: validation ROC-AUC. Prints JSON.

The training set is shared out with ``training.demo_data.non_iid_shares`` (whole patients; class mixes 3:2:1 NORMAL
and 1:2:3 PNEUMONIA for three hospitals). Each round every hospital runs ``train_local_round`` from the global
weights for ``--local-epochs`` and ``federation.fedavg`` averages the updates weighted by example count. The
centralised baseline trains the same plan on all the data for rounds × local epochs (the same number of passes
over the data, and with ``--dp-epsilon`` the same ε). Validation: the data's own validation split, never trained on.

    nice -n 10 .venv/bin/python benchmarks/federated.py [--data NPZ] [--hospitals 3] [--rounds 6] [--dp-epsilon E]

Target (DESIGN.md): federated within 0.01 ROC-AUC of centralised.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import warnings

import torch
from dp import add_common_arguments, default_data, initial_state, make_plan, train, validation_auc

from pneumodesk.federation.fedavg import fedavg
from pneumodesk.training.demo_data import load_demo_data, non_iid_shares
from pneumodesk.training.privacy import plan_privacy_cost


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_arguments(parser)
    parser.add_argument("--hospitals", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--local-epochs", type=int, default=1)
    parser.add_argument("--dp-epsilon", type=float, default=None, help="DP-SGD with this total ε (default: off)")
    parser.set_defaults(batch_size=64, learning_rate=2e-3, repeats=1)
    args = parser.parse_args()
    warnings.filterwarnings("ignore", message="Optimal order is the largest alpha")
    torch.set_num_threads(args.threads)
    data_path = args.data or default_data()
    data = load_demo_data(data_path, args.input_size)
    federated_plan = make_plan(args, epochs=args.local_epochs, rounds=args.rounds, epsilon=args.dp_epsilon)
    central_plan = make_plan(args, epochs=args.local_epochs * args.rounds, rounds=1, epsilon=args.dp_epsilon)
    federated_auc, central_auc, federated_s, central_s = [], [], [], []
    histories: list[list[float]] = []
    for repeat in range(args.repeats):
        seed = 2000 + repeat
        shares = non_iid_shares(data.train_labels, data.train_groups, args.hospitals, seed=seed)
        initial = initial_state(args.architecture, seed)
        started = time.perf_counter()
        weights = initial
        history = []
        for round_number in range(1, args.rounds + 1):
            updates = [
                train(weights, data.train_inputs[share], data.train_labels[share], federated_plan,
                      seed * 1000 + round_number * 10 + hospital)
                for hospital, share in enumerate(shares)
            ]
            weights = {name: torch.from_numpy(array) for name, array in
                       fedavg((update.state, update.examples) for update in updates).items()}
            history.append(round(validation_auc(weights, args.architecture, data), 4))
            print(f"repeat {repeat} round {round_number}: federated auc={history[-1]:.4f}", file=sys.stderr, flush=True)
        federated_s.append(time.perf_counter() - started)
        federated_auc.append(history[-1])
        histories.append(history)
        started = time.perf_counter()
        central = train(initial, data.train_inputs, data.train_labels, central_plan, seed)
        central_s.append(time.perf_counter() - started)
        central_auc.append(validation_auc(central.state, args.architecture, data))
        print(f"repeat {repeat}: centralised auc={central_auc[-1]:.4f}", file=sys.stderr, flush=True)
    gap = statistics.median(central_auc) - statistics.median(federated_auc)
    result = {
        "benchmark": "federated_vs_centralised",
        "data": str(data_path),
        "train_images": len(data.train_labels),
        "validation_images": len(data.validation_labels),
        "hospitals": [
            {"images": len(share), "pneumonia_fraction": round(float(data.train_labels[share].mean()), 3)}
            for share in non_iid_shares(data.train_labels, data.train_groups, args.hospitals, seed=2000)
        ],
        "architecture": args.architecture,
        "input_size": args.input_size,
        "rounds": args.rounds,
        "local_epochs": args.local_epochs,
        "batch_size": args.batch_size,
        "optimiser": args.optimiser,
        "learning_rate": args.learning_rate,
        "dp_epsilon": args.dp_epsilon,
        # RDP-composed over all rounds (each hospital's own sample rate), as its privacy ledger would record it
        "dp_epsilon_spent_per_hospital": None if args.dp_epsilon is None else [
            round(plan_privacy_cost(federated_plan, len(share)).epsilon_total, 3)
            for share in non_iid_shares(data.train_labels, data.train_groups, args.hospitals, seed=2000)
        ],
        "threads": args.threads,
        "repeats": args.repeats,
        "federated_auc": round(statistics.median(federated_auc), 4),
        "centralised_auc": round(statistics.median(central_auc), 4),
        "federated_auc_by_round": histories,
        "auc_runs": {"federated": federated_auc, "centralised": [round(v, 4) for v in central_auc]},
        "auc_gap": round(gap, 4),
        "auc_gap_target": 0.01,
        "auc_gap_met": gap <= 0.01,
        "federated_seconds": round(statistics.median(federated_s), 1),
        "centralised_seconds": round(statistics.median(central_s), 1),
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
