"""The validation split: grouped by patient/study, stratified by label, fixed by a seed."""

from __future__ import annotations

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold

DEFAULT_SEED = 20261127
DEFAULT_VALIDATION_FOLDS = 10  # one fold of ten ≈ 10 % of the images for validation


def grouped_split(
    labels: np.ndarray, groups: list[str], *, seed: int = DEFAULT_SEED, folds: int = DEFAULT_VALIDATION_FOLDS
) -> tuple[np.ndarray, np.ndarray]:
    """(train indices, validation indices). No group appears on both sides; class ratios stay close.

    The same labels, groups and seed always give the same split.
    """
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    train, validation = next(splitter.split(np.zeros(len(labels)), labels, groups))
    return np.sort(train), np.sort(validation)
