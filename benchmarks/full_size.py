"""Does a full-size hospital image get the same answer as the 224×224 training-style image of the same X-ray?

Takes the default model's own validation split (patient-grouped, same seed as training), renders each image at a
random full size (1000–3000 px, landscape or portrait, as 8-bit JPEG or 16-bit PNG), predicts both versions, and
prints JSON: ROC-AUC on each, and how far the probabilities move. Reads ../shared/data by default.

    .venv/bin/python benchmarks/full_size.py [--data ../shared/data/kermany224/train] [--limit 600]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image
from sklearn.metrics import roc_auc_score

from pneumodesk.inference import Predictor, predict_files
from pneumodesk.training import grouped_split, scan_folder


def render_full_size(source: Path, target_stem: Path, rng: np.random.Generator) -> Path:
    width = int(rng.integers(1000, 3000))
    height = int(width * rng.uniform(0.75, 1.3))
    with Image.open(source) as image:
        grey = np.asarray(image.convert("L").resize((width, height), Image.Resampling.BICUBIC), dtype=np.float32)
    if rng.random() < 0.5:
        path = target_stem.with_suffix(".jpg")
        Image.fromarray(np.clip(grey, 0, 255).astype(np.uint8)).save(path, quality=90)
    else:
        path = target_stem.with_suffix(".png")
        Image.fromarray((np.clip(grey, 0, 255) * 257).astype(np.uint16)).save(path)
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/kermany224/train"))
    parser.add_argument("--model", type=Path)
    parser.add_argument("--limit", type=int, default=600)
    args = parser.parse_args()

    predictor = Predictor.from_path(args.model)
    dataset = scan_folder(args.data)
    seed = int(predictor.card.training.get("recipe", {}).get("seed", 0))
    _, validation = grouped_split(dataset.labels, [image.group for image in dataset.images], seed=seed)
    chosen = [dataset.images[i] for i in validation[: args.limit]]
    labels = np.array([image.label for image in chosen])
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as temporary:
        full = [render_full_size(image.path, Path(temporary) / f"{i:05d}", rng) for i, image in enumerate(chosen)]
        small = [r.prediction.probability for r in predict_files(predictor, [image.path for image in chosen])]
        large = [r.prediction.probability for r in predict_files(predictor, full)]
    small_p, large_p = np.array(small), np.array(large)
    decisions_changed = int(
        ((small_p >= predictor.operating_point.threshold) != (large_p >= predictor.operating_point.threshold)).sum()
    )
    print(
        json.dumps(
            {
                "model_version": predictor.model_version,
                "images": len(chosen),
                "roc_auc_224": round(float(roc_auc_score(labels, small_p)), 4),
                "roc_auc_full_size": round(float(roc_auc_score(labels, large_p)), 4),
                "probability_abs_difference_median": round(float(np.median(np.abs(small_p - large_p))), 4),
                "probability_abs_difference_p95": round(float(np.percentile(np.abs(small_p - large_p), 95)), 4),
                "decisions_changed_at_default_point": decisions_changed,
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
