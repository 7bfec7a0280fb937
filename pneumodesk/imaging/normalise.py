"""Bring decoded pixel values into the XRay range [0, 1]."""

from __future__ import annotations

import numpy as np

from .errors import EmptyFileError


def to_unit_range(values: np.ndarray, *, stretch: bool = False) -> np.ndarray:
    """Float32 copy of ``values`` in [0, 1].

    Values already scaled by bit depth are only clipped, unless ``stretch`` asks for a min-max stretch (used for
    DICOM, whose value range is set by its rescale and window). A picture with no contrast at all is refused:
    nothing can be predicted from it.
    """
    values = np.asarray(values, dtype=np.float32)
    if not np.isfinite(values).all():
        values = np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0)
    low, high = float(values.min()), float(values.max())
    if high - low <= 1e-6:
        raise EmptyFileError("The image is blank: every pixel has the same value.")
    if stretch or low < 0.0 or high > 1.0:
        return np.ascontiguousarray((values - low) / (high - low), dtype=np.float32)
    return np.ascontiguousarray(values, dtype=np.float32)
