"""Classification metrics for a binary pneumonia score: ROC-AUC with a bootstrap CI, sensitivity/specificity,
calibration error, operating-point selection and temperature scaling."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.special import expit
from sklearn.metrics import roc_auc_score, roc_curve


def sigmoid(values: np.ndarray) -> np.ndarray:
    return expit(np.asarray(values, dtype=np.float64))


def roc_auc_with_ci(
    labels: np.ndarray, scores: np.ndarray, *, resamples: int = 2000, seed: int = 0
) -> tuple[float, tuple[float, float]]:
    """ROC-AUC and its 95 % percentile-bootstrap confidence interval (resampling images, stratified by class)."""
    labels = np.asarray(labels)
    scores = np.asarray(scores)
    auc = float(roc_auc_score(labels, scores))
    rng = np.random.default_rng(seed)
    positives, negatives = np.flatnonzero(labels == 1), np.flatnonzero(labels == 0)
    estimates = np.empty(resamples)
    for i in range(resamples):
        chosen = np.concatenate([rng.choice(positives, positives.size), rng.choice(negatives, negatives.size)])
        estimates[i] = _rank_auc(scores[chosen], positives.size)
    low, high = np.percentile(estimates, [2.5, 97.5])
    return auc, (float(low), float(high))


def _rank_auc(scores: np.ndarray, positives: int) -> float:
    """ROC-AUC of scores whose first ``positives`` entries are the positives (Mann–Whitney U with average ranks for
    ties: the same value as ``roc_auc_score``, without its input validation, which dominated bootstrap time)."""
    from scipy.stats import rankdata

    negatives = scores.size - positives
    ranks = rankdata(scores)
    return float((ranks[:positives].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def sensitivity_specificity(labels: np.ndarray, probabilities: np.ndarray, threshold: float) -> tuple[float, float]:
    """Decision rule: PNEUMONIA when probability ≥ threshold."""
    labels = np.asarray(labels)
    predicted = np.asarray(probabilities) >= threshold
    sensitivity = float(predicted[labels == 1].mean()) if (labels == 1).any() else float("nan")
    specificity = float((~predicted[labels == 0]).mean()) if (labels == 0).any() else float("nan")
    return sensitivity, specificity


def expected_calibration_error(labels: np.ndarray, probabilities: np.ndarray, bins: int = 10) -> float:
    """Mean |observed rate − mean probability| over equal-width probability bins, weighted by bin size."""
    labels = np.asarray(labels, dtype=np.float64)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(probabilities, edges[1:-1]), 0, bins - 1)
    error = 0.0
    for b in range(bins):
        members = which == b
        if members.any():
            error += members.mean() * abs(labels[members].mean() - probabilities[members].mean())
    return float(error)


@dataclass(frozen=True)
class ThresholdChoice:
    threshold: float
    sensitivity: float
    specificity: float


def threshold_for_sensitivity(labels: np.ndarray, probabilities: np.ndarray, target: float) -> ThresholdChoice:
    """The highest threshold whose sensitivity reaches ``target`` (so specificity is as high as it can be)."""
    # every score is a candidate: the points roc_curve drops by default can be higher thresholds that still reach it
    _, tpr, thresholds = roc_curve(labels, probabilities, drop_intermediate=False)
    candidates = np.flatnonzero(tpr >= target)
    threshold = float(min(thresholds[candidates[0]], 1.0))
    return ThresholdChoice(threshold, *sensitivity_specificity(labels, probabilities, threshold))


def threshold_balanced(labels: np.ndarray, probabilities: np.ndarray) -> ThresholdChoice:
    """The threshold that maximises Youden's J = sensitivity + specificity − 1."""
    fpr, tpr, thresholds = roc_curve(labels, probabilities)
    best = int(np.argmax(tpr - fpr))
    threshold = float(min(thresholds[best], 1.0))
    return ThresholdChoice(threshold, *sensitivity_specificity(labels, probabilities, threshold))


def fit_temperature(labels: np.ndarray, logits: np.ndarray) -> tuple[float, float]:
    """Platt-style calibration: (temperature, bias) minimising the log loss of sigmoid(logit / T + bias).

    The bias undoes the prior shift of class-weighted training; the temperature fixes over-confidence.
    The targets are Platt's (1999) smoothed ones, (N₊ + 1) / (N₊ + 2) for pneumonia and 1 / (N₋ + 2) for normal,
    not 1 and 0: on perfectly separated images (a few confirmed cases) the plain log loss has no minimum — the
    temperature runs to 0, every probability to 0 or 1 and the balanced threshold to 1.000 — while with these
    targets the fit stays finite, and on thousands of images they are 1 and 0 to within a tenth of a percent.
    """
    y_true = np.asarray(labels)
    positives, negatives = int((y_true == 1).sum()), int((y_true == 0).sum())
    targets = np.where(y_true == 1, (positives + 1) / (positives + 2), 1 / (negatives + 2))
    z = torch.as_tensor(np.asarray(logits), dtype=torch.float64)
    y = torch.as_tensor(targets, dtype=torch.float64)
    log_temperature = torch.zeros((), dtype=torch.float64, requires_grad=True)
    bias = torch.zeros((), dtype=torch.float64, requires_grad=True)
    optimiser = torch.optim.LBFGS([log_temperature, bias], lr=0.1, max_iter=200, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimiser.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(z / log_temperature.exp() + bias, y)
        loss.backward()
        return loss

    optimiser.step(closure)
    return float(log_temperature.detach().exp()), float(bias.detach())
