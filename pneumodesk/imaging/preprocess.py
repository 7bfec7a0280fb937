"""THE preprocessing function: training and prediction both turn an XRay into model input here, and only here.

The training images are full radiographs squashed (aspect ratio not kept) to 224×224. A full-size hospital image
therefore goes through the same geometry: squash to 224×224 with an anti-aliased resample, then to the model's
input size; finally each image is standardised to zero mean and unit variance, so that bit depth, window and
exposure differences between JPEG, 16-bit PNG and DICOM sources do not move the model's input.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from .xray import XRay

PREPROCESSING_VERSION = "1"
CANONICAL_SIZE = 224  # the square the training images were squashed to


def preprocess(xray: XRay, input_size: int) -> np.ndarray:
    """Model input for one X-ray: float32, shape (1, input_size, input_size), per-image zero mean / unit std."""
    square = _resize(xray.pixels, CANONICAL_SIZE)
    if input_size != CANONICAL_SIZE:
        square = _resize(square, input_size)
    mean = float(square.mean())
    std = float(square.std())
    standardised = (square - mean) / max(std, 1e-3)
    return standardised.astype(np.float32, copy=False)[None, :, :]


def _resize(pixels: np.ndarray, size: int) -> np.ndarray:
    if pixels.shape == (size, size):
        return pixels.astype(np.float32, copy=False)
    image = Image.fromarray(np.ascontiguousarray(pixels, dtype=np.float32), mode="F")
    # Pillow's bilinear filter widens its support when shrinking, i.e. it anti-aliases like an area average.
    return np.asarray(image.resize((size, size), Image.Resampling.BILINEAR), dtype=np.float32)
