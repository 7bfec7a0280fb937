"""Fitting the out-of-distribution check of a model bundle on its training images' penultimate features.

Invariants: the statistics come from training images only (with a shifted copy of each when the model was trained
on shifted images). The threshold is the smallest that refuses at most ``refuse_at_most`` (1 %) of the clean
validation chest X-rays, at most that share of the shifted validation X-rays pooled over every calibration condition
in which the model still works (ROC-AUC at least ``min_auc``, the product's floor), and at most
``refuse_at_most_per_shift`` (5 %) of any one such condition — so a hospital whose images differ in one of those
ways is not refused wholesale, while one rare rendering (a thick white frame) cannot widen the threshold until a CT
slice passes, as a 1 % cap on every condition did. Conditions where the model fails (ROC-AUC below the floor: e.g.
an inverted rendering) are not protected: refusing them beats answering badly. The card entry lists every share.
The weights are never touched: fitting returns the same bundle with new statistics.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch
from sklearn.covariance import LedoitWolf

from pneumodesk.model import FeatureDistribution, ModelBundle, embed_and_classify

METHODS = ("mahalanobis-class", "mahalanobis-pooled")
DEFAULT_METHOD = "mahalanobis-class"
DEFAULT_REFUSE_AT_MOST = 0.01  # of the clean validation X-rays, and of the shifted ones pooled
DEFAULT_REFUSE_AT_MOST_PER_SHIFT = 0.05  # of any one protected shift
DEFAULT_MIN_AUC = 0.965  # DESIGN.md: the default model's ROC-AUC floor on images from outside its training split


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


def threshold_for_refusal_rule(
    scores_by_condition: Mapping[str, np.ndarray], clean: str, share: float = DEFAULT_REFUSE_AT_MOST,
    share_per_shift: float = DEFAULT_REFUSE_AT_MOST_PER_SHIFT,
) -> float:
    """The smallest threshold refusing at most ``share`` of ``clean``, at most ``share`` of every other condition
    pooled, and at most ``share_per_shift`` of each other condition (each cap alone is monotone in the threshold, so
    the largest of the three smallest thresholds meets all three)."""
    shifted = {name: np.asarray(scores) for name, scores in scores_by_condition.items() if name != clean}
    bounds = [threshold_refusing_at_most({clean: scores_by_condition[clean]}, share)]
    if shifted:
        bounds.append(threshold_refusing_at_most({"pooled": np.concatenate(list(shifted.values()))}, share))
        bounds.append(threshold_refusing_at_most(shifted, share_per_shift))
    return max(bounds)


def with_fitted_ood(
    bundle: ModelBundle,
    train_inputs: np.ndarray,
    train_labels: np.ndarray,
    calibration_inputs: Mapping[str, np.ndarray],
    calibration_labels: np.ndarray,
    *,
    method: str = DEFAULT_METHOD,
    refuse_at_most: float = DEFAULT_REFUSE_AT_MOST,
    refuse_at_most_per_shift: float = DEFAULT_REFUSE_AT_MOST_PER_SHIFT,
    min_auc: float = DEFAULT_MIN_AUC,
    clean: str | None = None,
    description: Mapping[str, Any] | None = None,
    shifted_copies: Callable[[np.ndarray], np.ndarray] | None = None,
) -> ModelBundle:
    """``bundle`` with statistics fitted on ``train_inputs`` and a threshold set on ``calibration_inputs``
    (condition name → preprocessed chest X-rays, all the same images with ``calibration_labels``). ``clean`` names
    the condition always protected whatever its ROC-AUC (default: the first). The card entry records the rule and
    the refusal share in every condition.

    ``shifted_copies`` (a model trained with shift-aware augmentation): the statistics are fitted on the training
    images and a shifted copy of each, so that the distribution is the one the model was trained on; a shifted chest
    X-ray then sits near it while other images stay far (one threshold wide enough for every protected shift would
    otherwise let a CT slice through)."""
    from sklearn.metrics import roc_auc_score

    features, _ = penultimate_features(bundle, train_inputs)
    fitted_labels = np.asarray(train_labels)
    if shifted_copies is not None:
        copies, _ = penultimate_features(bundle, shifted_copies(train_inputs))
        features, fitted_labels = np.concatenate([features, copies]), np.concatenate([fitted_labels, fitted_labels])
    fitted = fit_distribution(features, fitted_labels, method)
    scores, aucs = {}, {}
    for name, inputs in calibration_inputs.items():
        condition_features, logits = penultimate_features(bundle, inputs)
        scores[name] = fitted.scores(condition_features)
        both = len(set(np.asarray(calibration_labels).tolist())) == 2
        aucs[name] = float(roc_auc_score(calibration_labels, logits)) if both else float("nan")
    always = clean if clean is not None else next(iter(calibration_inputs))
    protected = {name: values for name, values in scores.items() if name == always or aucs[name] >= min_auc}
    threshold = threshold_for_refusal_rule(protected, always, refuse_at_most, refuse_at_most_per_shift)

    def share(values: np.ndarray) -> float:
        return round(float((values > threshold).mean()), 4)

    ood = FeatureDistribution(fitted.means, fitted.precision, threshold, method)
    return bundle.with_ood(
        ood,
        features=f"penultimate layer ({features.shape[1]} values, pooled before the classifier)",
        fitted_on=f"{len(train_labels)} training images"
        + (" and a shifted copy of each (the recipe's shift-aware augmentation)" if shifted_copies is not None else ""),
        threshold_rule=f"refuses at most {refuse_at_most:.0%} of the clean validation chest X-rays, at most "
        f"{refuse_at_most:.0%} of the shifted ones pooled over the calibration conditions in which the model's ROC-AUC "
        f"is at least {min_auc}, and at most {refuse_at_most_per_shift:.0%} of any one of them",
        refused_share_by_condition={name: share(values) for name, values in protected.items()},
        not_protected={name: {"roc_auc": round(aucs[name], 4), "refused_share": share(values)}
                       for name, values in scores.items() if name not in protected},
        **(description or {}),
    )
