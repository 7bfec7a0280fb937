"""Knowing when not to answer: how many chest X-rays the out-of-distribution check wrongly refuses (validation images,
clean and under every shift of the shift suite) and how many other images it catches (scikit-image's sample images,
pydicom's CT/MR/US/NM/secondary-capture test files as PNG). Prints JSON.

    .venv/bin/python benchmarks/ood.py [--data ../shared/data/kermany224/train] [--model BUNDLE] [--compare]

The threshold must accept at least 99 % of the clean chest X-rays, 99 % of the shifted ones pooled over every
condition in which the model still works (ROC-AUC at least the product's floor, 0.965) and 95 % of each such
condition; under shifts where it fails (an inverted rendering) refusing is counted, not hidden. --compare also
fits every candidate score on the training images' features
(Mahalanobis class-conditional with a tied covariance, Mahalanobis pooled, and the energy score of the logit) and
measures each with its threshold set on one half of the validation images and counted on the other half (and vice
versa), to choose by measurement.
Colour pictures are refused by the reader before the model sees them (``imaging.intended_use``); they count as
caught, and are listed as such. Features are cached per weights checksum (--cache), so a second run costs seconds.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from ood_images import pydicom_test_images, scikit_image_samples
from sklearn.metrics import roc_auc_score

from pneumodesk.imaging import OutsideIntendedUseError, XRayReadError, preprocess, read_xray
from pneumodesk.model import FeatureDistribution, load_bundle
from pneumodesk.model.default import default_bundle_path
from pneumodesk.training.out_of_distribution import (
    DEFAULT_MIN_AUC,
    DEFAULT_REFUSE_AT_MOST,
    fit_distribution,
    penultimate_features,
    threshold_for_refusal_rule,
)
from pneumodesk.training.pipeline import prepare_data
from pneumodesk.training.shifts import SHIFT_SUITE
from pneumodesk.training.yardstick import CLEAN, bundle_seed, shifted_inputs, validation_xrays


def protected_conditions(logits: dict[str, np.ndarray], labels: np.ndarray) -> set[str]:
    """The conditions the threshold must accept (as ``with_fitted_ood`` decides): clean, and every shift on which the
    model's ROC-AUC reaches the floor. Elsewhere the model fails, and refusing is better than answering."""
    return {name for name, values in logits.items()
            if name == CLEAN or roc_auc_score(labels, values) >= DEFAULT_MIN_AUC}


def log(message: str, started: float = time.perf_counter()) -> None:
    print(f"[{time.perf_counter() - started:6.1f} s] {message}", file=sys.stderr, flush=True)


def collect(args: argparse.Namespace, bundle: Any, work: Path) -> dict[str, np.ndarray]:
    """Features and logits of every image set, keyed "<kind>:<name>:features|logits"; cached per weights sha256."""
    key = hashlib.sha256(f"{bundle.card.weights_sha256}|{args.limit}|{args.compare}|reader-2".encode()).hexdigest()[:16]
    cache = args.cache / f"ood-features-{key}.npz"
    if cache.exists():
        with np.load(cache) as stored:
            return {name: stored[name] for name in stored.files}
    arrays: dict[str, np.ndarray] = {}

    def add(kind: str, name: str, inputs: np.ndarray) -> None:
        features, logits = penultimate_features(bundle, inputs)
        arrays[f"{kind}:{name}:features"], arrays[f"{kind}:{name}:logits"] = features, logits

    seed, size = bundle_seed(bundle), bundle.card.input_size
    images = validation_xrays(args.data, seed, args.limit)
    arrays["validation:labels"] = images.labels
    for shift in (None, *SHIFT_SUITE):
        log(f"validation features: {CLEAN if shift is None else shift.name}")
        add("xray", CLEAN if shift is None else shift.name, shifted_inputs(images.xrays, shift, size))
    others = scikit_image_samples(work) + pydicom_test_images(work)
    for other in others:
        try:
            add(f"other-{other.source}", other.name, preprocess(read_xray(other.path), size)[None])
        except OutsideIntendedUseError:  # refused by the reader (a colour picture): caught before the model
            arrays[f"read-{other.source}:{other.name}:refused"] = np.ones(1)
        except XRayReadError as error:
            log(f"skipped {other.name}: {error}")
    if args.compare:
        log("training features (for fitting the candidates)")
        prepared = prepare_data(args.data, size, seed)
        add("train", "train", prepared.train.inputs)
        arrays["train:labels"] = prepared.train.labels
    args.cache.mkdir(parents=True, exist_ok=True)
    np.savez(cache, **arrays)
    return arrays


def split_by_kind(arrays: dict[str, np.ndarray], part: str) -> dict[str, dict[str, np.ndarray]]:
    kinds: dict[str, dict[str, np.ndarray]] = {}
    for key, value in arrays.items():
        if key.endswith(f":{part}"):
            kind, name, _ = key.split(":")
            kinds.setdefault(kind, {})[name] = value
    return kinds


def rate(flags: np.ndarray) -> float:
    return round(float(np.mean(flags)), 4)


def measure(scores: dict[str, dict[str, np.ndarray]], threshold: float, protected: set[str],
            refused_when_read: dict[str, list[str]] | None = None) -> dict[str, Any]:
    """Refused share per chest X-ray condition, caught share per other-image source (with the missed names); images
    the reader already refused (``refused_when_read``, by source: colour pictures) count as caught."""
    xray = {name: rate(values > threshold) for name, values in scores["xray"].items()}
    refused_when_read = refused_when_read or {}
    others: dict[str, Any] = {}
    for kind in sorted(k for k in scores if k.startswith("other-")):
        named, source = scores[kind], kind.removeprefix("other-")
        by_reader = refused_when_read.get(source, [])
        caught = [name for name, value in named.items() if value[0] > threshold]
        images = len(named) + len(by_reader)
        others[source] = {
            "images": images, "caught": len(caught) + len(by_reader),
            "caught_share": round((len(caught) + len(by_reader)) / max(images, 1), 4),
            "refused_when_read": sorted(by_reader), "missed": sorted(set(named) - set(caught)),
        }
    all_other = np.concatenate([v for k in scores if k.startswith("other-") for v in scores[k].values()]
                               + [np.full(len(v), np.inf) for v in refused_when_read.values()])
    accepted_conditions = {name: value for name, value in xray.items() if name in protected}
    return {
        "threshold": round(threshold, 3),
        "chest_xrays_refused": {
            "clean_validation": xray[CLEAN],
            "worst_protected_shift": max((v, n) for n, v in accepted_conditions.items() if n != CLEAN)[::-1],
            "protected_shifts_pooled": rate(np.concatenate(
                [scores["xray"][n] > threshold for n in accepted_conditions if n != CLEAN])),
            "all_shifts_pooled": rate(np.concatenate(
                [values > threshold for n, values in scores["xray"].items() if n != CLEAN])),
            "not_protected (model ROC-AUC below the floor)": {n: v for n, v in xray.items() if n not in protected},
            "by_condition": xray,
        },
        "other_images_caught": {**others, "all": rate(all_other > threshold)},
    }


def cross_fitted(scores: dict[str, dict[str, np.ndarray]], share: float, protected: set[str]) -> dict[str, Any]:
    """Threshold set on half of the validation images (each condition), refusal counted on the other half."""
    n = len(scores["xray"][CLEAN])
    halves = np.random.default_rng(0).permutation(n) % 2 == 0
    refused, caught = [], []
    for fit_half in (halves, ~halves):
        fit = {k: v[fit_half] for k, v in scores["xray"].items() if k in protected}
        threshold = threshold_for_refusal_rule(fit, CLEAN, share)
        refused.append({k: rate(v[~fit_half] > threshold) for k, v in scores["xray"].items() if k in protected})
        caught.append(rate(np.concatenate([v for k in scores if k.startswith("other-") for v in scores[k].values()])
                           > threshold))
    return {
        "held_out_refused_clean": round(float(np.mean([r[CLEAN] for r in refused])), 4),
        "held_out_refused_worst_condition": round(float(np.mean([max(r.values()) for r in refused])), 4),
        "held_out_refused_mean_over_conditions": round(float(np.mean([np.mean(list(r.values())) for r in refused])), 4),
        "other_images_caught": round(float(np.mean(caught)), 4),
    }


def separation(scores: dict[str, dict[str, np.ndarray]]) -> float:
    inside = scores["xray"][CLEAN]
    outside = np.concatenate([v for k in scores if k.startswith("other-") for v in scores[k].values()])
    return round(float(roc_auc_score(np.r_[np.zeros(len(inside)), np.ones(len(outside))], np.r_[inside, outside])), 4)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/kermany224/train"))
    parser.add_argument("--model", type=Path, default=None, help="model bundle (default: the bundled model)")
    parser.add_argument("--limit", type=int, default=None, help="at most this many validation images")
    parser.add_argument("--compare", action="store_true", help="fit and compare the candidate scores")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "pneumodesk-ood-cache")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    bundle = load_bundle(args.model or default_bundle_path())
    with tempfile.TemporaryDirectory() as work:
        arrays = collect(args, bundle, Path(work))
    features = split_by_kind(arrays, "features")
    logits = split_by_kind(arrays, "logits")
    refused_when_read = {kind.removeprefix("read-"): sorted(named)
                         for kind, named in split_by_kind(arrays, "refused").items()}
    report: dict[str, Any] = {
        "model_version": bundle.card.version,
        "validation_images": len(arrays["validation:labels"]),
        "other_images": {kind.removeprefix("other-"): len(named) + len(refused_when_read.get(kind[6:], []))
                         for kind, named in features.items() if kind.startswith("other-")},
        "refused_when_read": refused_when_read,
        "other_images_note": "scikit-image's bundled samples (photographs, micrographs, textures, text, a phantom) "
        "and pydicom's test files with pixel data (CT, MR, US, NM, RT, SEG, secondary captures; many secondary "
        "captures are one test picture in several encodings), min-max scaled to 8-bit PNG",
    }

    def scored(distribution: FeatureDistribution) -> dict[str, dict[str, np.ndarray]]:
        return {kind: {name: distribution.scores(value) for name, value in named.items()}
                for kind, named in features.items() if kind != "train"}

    protected = protected_conditions(logits["xray"], arrays["validation:labels"])
    report["protected_conditions"] = sorted(protected)
    if bundle.ood is not None:
        report["shipped_check"] = {"method": bundle.ood.method,
                                   **measure(scored(bundle.ood), bundle.ood.threshold, protected, refused_when_read)}
    else:
        report["shipped_check"] = None
    if args.compare:
        train_features, train_labels = features["train"]["train"], arrays["train:labels"]
        candidates: dict[str, dict[str, dict[str, np.ndarray]]] = {}
        for method in ("mahalanobis-class", "mahalanobis-pooled"):
            candidates[method] = scored(fit_distribution(train_features, train_labels, method))
        candidates["energy (−softplus of the logit)"] = {
            kind: {name: -np.logaddexp(0.0, value.astype(np.float64)) for name, value in named.items()}
            for kind, named in logits.items() if kind != "train"}
        comparison = {}
        for name, scores in candidates.items():
            threshold = threshold_for_refusal_rule(
                {k: v for k, v in scores["xray"].items() if k in protected}, CLEAN, DEFAULT_REFUSE_AT_MOST)
            comparison[name] = {
                "auroc_clean_xrays_vs_other_images": separation(scores),
                "cross_fitted_threshold": cross_fitted(scores, DEFAULT_REFUSE_AT_MOST, protected),
                "threshold_on_all_validation": measure(scores, threshold, protected, refused_when_read),
            }
        report["comparison"] = comparison
    text = json.dumps(report, indent=2, ensure_ascii=False)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
