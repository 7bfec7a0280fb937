"""A model's curves on labelled validation images — ROC points, reliability bins, the confusion counts at its
operating point — as plain figures that a model card or a candidate's metrics can carry as JSON and a chart can draw.

Invariants: every figure is computed from (labels, calibrated probabilities) alone; the ROC curve starts at (0, 0)
and ends at (1, 1) and is thinned to at most ``MAX_ROC_POINTS`` points (always keeping its corners); probabilities
in a reliability bin satisfy ``low ≤ p < high`` (the last bin includes 1.0); the decision rule is the app's
(PNEUMONIA when probability ≥ threshold). Nothing here refers to an individual image.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import ModelBundleError

MAX_ROC_POINTS = 200
RELIABILITY_BINS = 10


@dataclass(frozen=True)
class RocCurve:
    false_positive_rate: tuple[float, ...]
    true_positive_rate: tuple[float, ...]
    auc: float


@dataclass(frozen=True)
class RocMark:
    """An operating point placed on the ROC curve: what its threshold achieves on the same images."""

    name: str
    threshold: float
    false_positive_rate: float
    true_positive_rate: float


@dataclass(frozen=True)
class ReliabilityBin:
    low: float
    high: float
    count: int
    mean_probability: float  # NaN when the bin is empty
    observed_rate: float  # fraction of pneumonia among the bin's images; NaN when empty


@dataclass(frozen=True)
class ConfusionCounts:
    threshold: float
    true_positives: int
    false_positives: int
    true_negatives: int
    false_negatives: int

    @property
    def sensitivity(self) -> float:
        positives = self.true_positives + self.false_negatives
        return self.true_positives / positives if positives else float("nan")

    @property
    def specificity(self) -> float:
        negatives = self.true_negatives + self.false_positives
        return self.true_negatives / negatives if negatives else float("nan")


@dataclass(frozen=True)
class ModelCurves:
    """Everything the Models page and the model-card dialog draw for one model on one set of images."""

    roc: RocCurve
    marks: tuple[RocMark, ...]
    reliability: tuple[ReliabilityBin, ...]
    confusion: ConfusionCounts  # at the default operating point

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "roc": {"fpr": [round(v, 5) for v in self.roc.false_positive_rate],
                    "tpr": [round(v, 5) for v in self.roc.true_positive_rate], "auc": round(self.roc.auc, 5)},
            "marks": [{"name": m.name, "threshold": m.threshold, "fpr": round(m.false_positive_rate, 5),
                       "tpr": round(m.true_positive_rate, 5)} for m in self.marks],
            "reliability": [{"low": b.low, "high": b.high, "count": b.count,
                             "mean_probability": None if b.count == 0 else round(b.mean_probability, 5),
                             "observed_rate": None if b.count == 0 else round(b.observed_rate, 5)}
                            for b in self.reliability],
            "confusion": {"threshold": self.confusion.threshold, "tp": self.confusion.true_positives,
                          "fp": self.confusion.false_positives, "tn": self.confusion.true_negatives,
                          "fn": self.confusion.false_negatives},
        }

    @classmethod
    def from_json_dict(cls, data: Mapping[str, Any]) -> ModelCurves:
        """Read what ``to_json_dict`` wrote; anything else raises ``ModelBundleError``."""
        try:
            roc = data["roc"]
            fpr, tpr = tuple(float(v) for v in roc["fpr"]), tuple(float(v) for v in roc["tpr"])
            if len(fpr) != len(tpr) or len(fpr) < 2:
                raise ValueError("the ROC curve's coordinates do not pair up")
            marks = tuple(RocMark(str(m["name"]), float(m["threshold"]), float(m["fpr"]), float(m["tpr"]))
                          for m in data["marks"])
            bins = tuple(ReliabilityBin(float(b["low"]), float(b["high"]), int(b["count"]),
                                        _number(b["mean_probability"]), _number(b["observed_rate"]))
                         for b in data["reliability"])
            c = data["confusion"]
            confusion = ConfusionCounts(float(c["threshold"]), int(c["tp"]), int(c["fp"]), int(c["tn"]), int(c["fn"]))
        except (KeyError, TypeError, ValueError) as error:
            raise ModelBundleError(f"The model's curves cannot be read: {error}") from None
        return cls(RocCurve(fpr, tpr, float(roc["auc"])), marks, bins, confusion)


def _number(value: Any) -> float:
    return float("nan") if value is None else float(value)


def roc_curve_points(labels: np.ndarray, probabilities: np.ndarray,
                     max_points: int = MAX_ROC_POINTS) -> RocCurve:
    from sklearn.metrics import roc_auc_score, roc_curve

    labels, probabilities = _checked(labels, probabilities)
    fpr, tpr, _ = roc_curve(labels, probabilities, drop_intermediate=True)
    if fpr.size > max_points:  # thin evenly, keeping both ends
        keep = np.unique(np.linspace(0, fpr.size - 1, max_points).round().astype(int))
        fpr, tpr = fpr[keep], tpr[keep]
    return RocCurve(tuple(float(v) for v in fpr), tuple(float(v) for v in tpr),
                    float(roc_auc_score(labels, probabilities)))


def roc_mark(name: str, labels: np.ndarray, probabilities: np.ndarray, threshold: float) -> RocMark:
    counts = confusion_counts(labels, probabilities, threshold)
    return RocMark(name, float(threshold), 1.0 - counts.specificity, counts.sensitivity)


def reliability_bins(labels: np.ndarray, probabilities: np.ndarray,
                     bins: int = RELIABILITY_BINS) -> tuple[ReliabilityBin, ...]:
    labels, probabilities = _checked(labels, probabilities)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(probabilities, edges[1:-1]), 0, bins - 1)
    result = []
    for b in range(bins):
        members = which == b
        count = int(members.sum())
        mean = float(probabilities[members].mean()) if count else float("nan")
        rate = float(labels[members].mean()) if count else float("nan")
        result.append(ReliabilityBin(float(edges[b]), float(edges[b + 1]), count, mean, rate))
    return tuple(result)


def confusion_counts(labels: np.ndarray, probabilities: np.ndarray, threshold: float) -> ConfusionCounts:
    labels, probabilities = _checked(labels, probabilities)
    predicted = probabilities >= threshold
    positive = labels == 1
    return ConfusionCounts(float(threshold), int((predicted & positive).sum()), int((predicted & ~positive).sum()),
                           int((~predicted & ~positive).sum()), int((~predicted & positive).sum()))


def model_curves(labels: np.ndarray, probabilities: np.ndarray, thresholds: Mapping[str, float],
                 default: str) -> ModelCurves:
    """The curves of calibrated ``probabilities`` against ``labels`` (1 = pneumonia); ``thresholds`` names the
    operating points to mark, ``default`` the one whose confusion counts are kept."""
    return ModelCurves(
        roc=roc_curve_points(labels, probabilities),
        marks=tuple(roc_mark(name, labels, probabilities, t) for name, t in thresholds.items()),
        reliability=reliability_bins(labels, probabilities),
        confusion=confusion_counts(labels, probabilities, thresholds[default]),
    )


def _checked(labels: np.ndarray, probabilities: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    labels = np.asarray(labels).reshape(-1).astype(np.int64)
    probabilities = np.asarray(probabilities, dtype=np.float64).reshape(-1)
    if labels.shape != probabilities.shape:
        raise ValueError("labels and probabilities differ in length")
    return labels, probabilities


__all__ = [
    "ConfusionCounts",
    "ModelCurves",
    "ReliabilityBin",
    "RocCurve",
    "RocMark",
    "confusion_counts",
    "model_curves",
    "reliability_bins",
    "roc_curve_points",
    "roc_mark",
]
