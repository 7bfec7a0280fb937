"""DP-SGD at ε = 8 vs non-private training on the same data: validation ROC-AUC and training time. Prints JSON.

Both runs are one ``training.local_round.train_local_round`` call (a one-round plan, same architecture, optimiser,
learning rate, batch size and epochs, same initial weights); only the plan's DP switch differs. The DP run calibrates
its noise so the whole run spends ε (Opacus RDP accountant); that calibration happens once per plan (when it is
approved), so it is timed separately (``calibration_cpu_seconds``), not inside the training time. Medians over
``--repeats`` seeds, runs interleaved; CPU time of this process is reported next to wall-clock time.

    nice -n 10 .venv/bin/python benchmarks/dp.py [--data NPZ] [--epochs 5] [--repeats 3] [--batch-size 512]

NPZ: PneumoniaMNIST layout (default ../shared/data/pneumoniamnist/pneumoniamnist_trainval.npz, its own train/val
split; else the shipped demo data). Targets (DESIGN.md): AUC gap ≤ 0.03, DP time ≤ 2× non-private.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from pneumodesk.federation.plan import DifferentialPrivacy, TrainingPlan
from pneumodesk.model import build_model
from pneumodesk.training.demo_data import DemoData, demo_npz_path, load_demo_data
from pneumodesk.training.local_round import LocalUpdate, train_local_round
from pneumodesk.training.privacy import plan_privacy_cost
from pneumodesk.training.trainer import predict_logits

SHARED_NPZ = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "pneumoniamnist" / (
    "pneumoniamnist_trainval.npz"
)


def default_data() -> Path:
    return SHARED_NPZ.resolve() if SHARED_NPZ.exists() else demo_npz_path()


def validation_auc(state: dict[str, torch.Tensor], architecture: str, data: DemoData) -> float:
    model = build_model(architecture)
    model.load_state_dict(state, strict=True)
    return float(roc_auc_score(data.validation_labels, predict_logits(model, data.validation_inputs, 256)))


def initial_state(architecture: str, seed: int) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    return {name: tensor.clone() for name, tensor in build_model(architecture).state_dict().items()}


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path, default=None, help="npz in the PneumoniaMNIST layout")
    parser.add_argument("--architecture", default="pneumonet-tiny")
    parser.add_argument("--input-size", type=int, default=28)
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--optimiser", choices=("sgd", "adam", "adamw"), default="adam")
    parser.add_argument("--learning-rate", type=float, default=8e-3)
    parser.add_argument("--clip", type=float, default=1.0, help="per-sample gradient clipping norm (DP)")
    parser.add_argument("--delta", type=float, default=1e-5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest for tiny models)")


def make_plan(args: argparse.Namespace, *, epochs: int, rounds: int, epsilon: float | None) -> TrainingPlan:
    dp = (
        DifferentialPrivacy(enabled=True, target_epsilon=epsilon, target_delta=args.delta, max_grad_norm=args.clip)
        if epsilon is not None
        else DifferentialPrivacy(enabled=False)
    )
    return TrainingPlan(
        name="benchmark",
        architecture=args.architecture,
        input_size=args.input_size,
        base_model_sha256="0" * 64,
        optimiser=args.optimiser,
        learning_rate=args.learning_rate,
        momentum=0.9 if args.optimiser == "sgd" else 0.0,
        batch_size=args.batch_size,
        local_epochs=epochs,
        rounds=rounds,
        min_nodes=1,
        secure_aggregation=False,
        dp=dp,
    )


def train(
    initial: dict[str, torch.Tensor], inputs: np.ndarray, labels: np.ndarray, plan: TrainingPlan, seed: int
) -> LocalUpdate:
    return train_local_round(initial, inputs, labels, plan, plan_privacy_cost(plan, len(labels)), seed=seed)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_arguments(parser)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--epsilon", type=float, default=8.0)
    args = parser.parse_args()
    warnings.filterwarnings("ignore", message="Optimal order is the largest alpha")
    torch.set_num_threads(args.threads)
    data_path = args.data or default_data()
    data = load_demo_data(data_path, args.input_size)
    private_plan = make_plan(args, epochs=args.epochs, rounds=1, epsilon=args.epsilon)
    plain_plan = make_plan(args, epochs=args.epochs, rounds=1, epsilon=None)
    calibration = time.process_time()
    cost = plan_privacy_cost(private_plan, len(data.train_labels))  # once per plan (at approval), not per round
    calibration = time.process_time() - calibration
    costs = {"nonprivate": None, "dp": cost}
    runs: dict[str, dict[str, list[float]]] = {name: {"auc": [], "s": [], "cpu": []} for name in ("nonprivate", "dp")}
    spent: list[float] = []
    for repeat in range(args.repeats):
        seed = 1000 + repeat
        initial = initial_state(args.architecture, seed)
        for name, plan in (("nonprivate", plain_plan), ("dp", private_plan)):
            started, cpu = time.perf_counter(), time.process_time()
            update = train_local_round(initial, data.train_inputs, data.train_labels, plan, costs[name], seed=seed)
            runs[name]["s"].append(time.perf_counter() - started)
            runs[name]["cpu"].append(time.process_time() - cpu)
            runs[name]["auc"].append(validation_auc(update.state, args.architecture, data))
            if update.epsilon is not None:
                spent.append(update.epsilon)
            print(f"repeat {repeat}: {name} auc={runs[name]['auc'][-1]:.4f} s={runs[name]['s'][-1]:.1f}",
                  file=sys.stderr, flush=True)
    median = {name: {key: statistics.median(values) for key, values in run.items()} for name, run in runs.items()}
    gap = median["nonprivate"]["auc"] - median["dp"]["auc"]
    ratio = median["dp"]["s"] / median["nonprivate"]["s"]
    cpu_ratio = median["dp"]["cpu"] / median["nonprivate"]["cpu"]
    result = {
        "benchmark": "dp_vs_nonprivate",
        "data": str(data_path),
        "train_images": len(data.train_labels),
        "validation_images": len(data.validation_labels),
        "architecture": args.architecture,
        "input_size": args.input_size,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "optimiser": args.optimiser,
        "learning_rate": args.learning_rate,
        "clip": args.clip,
        "threads": args.threads,
        "repeats": args.repeats,
        "epsilon_target": args.epsilon,
        "epsilon_spent": round(max(spent), 4),
        "delta": args.delta,
        "noise_multiplier": round(cost.noise_multiplier, 4),
        "sample_rate": round(cost.sample_rate, 5),
        "steps": cost.steps_per_round,
        "nonprivate_steps": args.epochs * -(-len(data.train_labels) // args.batch_size),
        "calibration_cpu_seconds": round(calibration, 2),  # noise for the budget: per plan, outside the timings
        "nonprivate_auc": round(median["nonprivate"]["auc"], 4),
        "dp_auc": round(median["dp"]["auc"], 4),
        "auc_runs": {name: [round(v, 4) for v in run["auc"]] for name, run in runs.items()},
        "auc_gap": round(gap, 4),
        "auc_gap_target": 0.03,
        "auc_gap_met": gap <= 0.03,
        "nonprivate_seconds": round(median["nonprivate"]["s"], 2),
        "dp_seconds": round(median["dp"]["s"], 2),
        "nonprivate_cpu_seconds": round(median["nonprivate"]["cpu"], 2),
        "dp_cpu_seconds": round(median["dp"]["cpu"], 2),
        "time_ratio": round(ratio, 2),
        "cpu_time_ratio": round(cpu_ratio, 2),  # CPU time of this process: less sensitive to other load
        "time_ratio_target": 2.0,
        "time_ratio_met": ratio <= 2.0,
        "seconds_runs": {name: [round(v, 2) for v in run["s"]] for name, run in runs.items()},
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
