"""How fast each registered architecture trains and predicts on this CPU, per input size: the measurement behind the
default model's choice of architecture and input size. Prints JSON (medians of repeated steps).

    .venv/bin/python benchmarks/architectures.py [--sizes 128 160 192 224] [--repeats 5] [--train-images 4700]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
import torch.nn.functional as F

from pneumodesk.model import architecture_names, build_model


def median_seconds(action, repeats: int) -> float:
    action()  # warm-up
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def measure(name: str, size: int, batch: int, repeats: int, train_images: int) -> dict[str, float | int | str]:
    torch.manual_seed(0)
    model = build_model(name)
    optimiser = torch.optim.AdamW(model.parameters())
    inputs, targets = torch.randn(batch, 1, size, size), torch.rand(batch)

    def train_step() -> None:
        loss = F.binary_cross_entropy_with_logits(model(inputs).reshape(-1), targets)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()

    model.train()
    step = median_seconds(train_step, repeats)
    model.eval()
    one = torch.randn(1, 1, size, size)
    with torch.inference_mode():
        infer = median_seconds(lambda: model(one), repeats * 4)
    return {
        "architecture": name,
        "input_size": size,
        "parameters": sum(p.numel() for p in model.parameters()),
        "train_ms_per_image": round(step / batch * 1000, 2),
        "estimated_epoch_seconds": round(step / batch * train_images, 1),
        "predict_one_ms": round(infer * 1000, 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--architectures", nargs="+", default=[n for n in architecture_names() if "tiny" not in n])
    parser.add_argument("--sizes", nargs="+", type=int, default=[128, 160, 192, 224])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--train-images", type=int, default=4700, help="images per epoch for the estimate")
    args = parser.parse_args()
    rows = [
        measure(name, size, args.batch_size, args.repeats, args.train_images)
        for name in args.architectures
        for size in args.sizes
    ]
    baseline = next((r for r in rows if r["architecture"] == "pneumonet-s" and r["input_size"] == 128), rows[0])
    for row in rows:
        row["train_cost_vs_baseline"] = round(row["train_ms_per_image"] / baseline["train_ms_per_image"], 2)
    print(
        json.dumps({"torch_threads": torch.get_num_threads(), "baseline": "pneumonet-s @128", "rows": rows}, indent=2)
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
