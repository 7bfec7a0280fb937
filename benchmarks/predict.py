"""Prediction speed on this machine: one full-size JPEG X-ray from file to probability, with and without a heat map,
and batch throughput. Prints JSON (medians of repeated runs; ratios against JPEG decoding measured in the same run).

    .venv/bin/python benchmarks/predict.py [--model BUNDLE_DIR] [--repeats 30] [--batch-images 200]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from sample_images import FULL_SIZE, full_size_jpegs

from pneumodesk.imaging import read_xray
from pneumodesk.inference import Predictor, predict_files


def median_ms(action, repeats: int) -> float:
    action()  # warm-up
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        times.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(times), 2)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="model bundle (default: the bundled model)")
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--batch-images", type=int, default=200)
    parser.add_argument("--batch-rounds", type=int, default=3)
    args = parser.parse_args()

    predictor = Predictor.from_path(args.model)
    with tempfile.TemporaryDirectory() as temporary:
        batch = full_size_jpegs(Path(temporary), args.batch_images)
        one = batch[0]
        decode = median_ms(lambda: read_xray(one), args.repeats)
        predict = median_ms(lambda: predictor.predict(read_xray(one)), args.repeats)
        heatmap = median_ms(lambda: predictor.predict_with_heatmap(read_xray(one)), args.repeats)
        rates = []
        for _ in range(args.batch_rounds):
            started = time.perf_counter()
            results = list(predict_files(predictor, batch))
            rates.append(len(results) / (time.perf_counter() - started))
            assert all(result.prediction for result in results)
    report = {
        "machine": {
            "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "python": sys.version.split()[0],
        },
        "model": {
            "version": predictor.model_version,
            "architecture": predictor.card.architecture,
            "input_size": predictor.card.input_size,
        },
        "image": {"format": "JPEG", "width": FULL_SIZE[0], "height": FULL_SIZE[1]},
        "repeats": args.repeats,
        "decode_only_ms_median": decode,
        "predict_ms_median": predict,
        "predict_with_heatmap_ms_median": heatmap,
        "batch_images_per_second_median": round(statistics.median(rates), 1),
        "batch_images": args.batch_images,
        "ratio_predict_to_decode": round(predict / decode, 2),
        "ratio_heatmap_to_predict": round(heatmap / predict, 2),
        "budgets": {"predict_ms": 50, "predict_with_heatmap_ms": 150, "batch_images_per_second": 40},
    }
    report["within_budget"] = {
        "predict": predict <= 50,
        "predict_with_heatmap": heatmap <= 150,
        "batch": report["batch_images_per_second_median"] >= 40,
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
