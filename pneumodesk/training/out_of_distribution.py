"""Fitting the out-of-distribution check of a model bundle on its training images' penultimate features.

Invariants: the statistics come from training images only; the threshold is the smallest that refuses at most
``refuse_at_most`` of the chest X-rays in EVERY calibration condition given (clean validation images and each
shifted copy), so a hospital whose images differ in those ways is not refused wholesale. The weights are never
touched: fitting returns the same bundle with new statistics.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from sklearn.covariance import LedoitWolf

from pneumodesk.model import FeatureDistribution, ModelBundle, embed_and_classify

METHODS = ("mahalanobis-class", "mahalanobis-pooled")
DEFAULT_METHOD = "mahalanobis-class"
DEFAULT_REFUSE_AT_MOST = 0.01


def penultimate_features(bundle: ModelBundle, inputs: np.ndarray, batch_size: int = 64
                         ) -> tuple[np.ndarray, np.ndarray]:
    """(features (n, d) float32, raw logits (n,)) of preprocessed inputs (n, 1, S, S), in evaluation mode."""
    model = bundle.build()
    features, logits = [], []
    with torch.inference_mode():
        for start in range(0, len(inputs), batch_size):
            batch = torch.as_tensor(np.asarray(inputs[start : start + batch_size]), dtype=torch.float32)
            embedded, logit = embed_and_classify(model, batch)
            features.append(embedded.numpy())
            logits.append(logit.numpy())
    return np.concatenate(features), np.concatenate(logits)


def fit_distribution(features: np.ndarray, labels: np.ndarray, method: str = DEFAULT_METHOD) -> FeatureDistribution:
    """Class means (or one pooled mean) and the Ledoit–Wolf-shrunk precision of the features around them; the
    threshold is left at +inf until ``with_threshold``."""
    if method not in METHODS:
        raise ValueError(f"Unknown method {method!r}; known: {', '.join(METHODS)}")
    features = np.asarray(features, dtype=np.float64)
    if method == "mahalanobis-pooled":
        means = features.mean(axis=0, keepdims=True)
        centred = features - means[0]
    else:
        means = np.stack([features[labels == label].mean(axis=0) for label in (0, 1)])
        centred = features - means[np.asarray(labels, dtype=np.int64)]
    covariance = LedoitWolf(assume_centered=True).fit(centred).covariance_
    return FeatureDistribution(means, np.linalg.inv(covariance), float("inf"), method)


def threshold_refusing_at_most(scores_by_condition: Mapping[str, np.ndarray], share: float) -> float:
    """The smallest threshold that refuses at most ``share`` of the images of each condition."""
    return float(max(np.quantile(np.asarray(scores), 1.0 - share, method="higher")
                     for scores in scores_by_condition.values()))


def with_fitted_ood(
    bundle: ModelBundle,
    train_inputs: np.ndarray,
    train_labels: np.ndarray,
    calibration_inputs: Mapping[str, np.ndarray],
    *,
    method: str = DEFAULT_METHOD,
    refuse_at_most: float = DEFAULT_REFUSE_AT_MOST,
    description: Mapping[str, Any] | None = None,
) -> ModelBundle:
    """``bundle`` with statistics fitted on ``train_inputs`` and a threshold set on ``calibration_inputs``
    (condition name → preprocessed chest X-rays); the card entry records how, and the refusal share reached."""
    features, _ = penultimate_features(bundle, train_inputs)
    fitted = fit_distribution(features, train_labels, method)
    scores = {name: fitted.scores(penultimate_features(bundle, inputs)[0]) for name, inputs in
              calibration_inputs.items()}
    threshold = threshold_refusing_at_most(scores, refuse_at_most)
    refused = {name: round(float((values > threshold).mean()), 4) for name, values in scores.items()}
    ood = FeatureDistribution(fitted.means, fitted.precision, threshold, method)
    return bundle.with_ood(
        ood,
        features=f"penultimate layer ({features.shape[1]} values, pooled before the classifier)",
        fitted_on=f"{len(train_labels)} training images",
        threshold_rule=f"refuses at most {refuse_at_most:.0%} of the chest X-rays in each calibration condition",
        refused_share_by_condition=refused,
        **(description or {}),
    )
