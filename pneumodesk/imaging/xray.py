"""The one in-memory X-ray type every reader produces."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SourceFacts:
    """Technical facts about where the pixels came from. Never carries patient identifiers."""

    format: str  # "PNG", "JPEG", "DICOM", ...
    width: int  # after orientation correction
    height: int
    bit_depth: int  # bits per sample as stored (8, 12, 16, ...)
    photometric: str  # "MONOCHROME2", "MONOCHROME1", "RGB", ...
    transfer_syntax: str | None = None  # DICOM only


@dataclass(frozen=True)
class XRay:
    """A grey-scale X-ray: ``pixels`` is float32, shape (height, width), values in [0, 1], 1 = bright (bone)."""

    pixels: np.ndarray
    source: SourceFacts

    def __post_init__(self) -> None:
        if self.pixels.ndim != 2 or self.pixels.dtype != np.float32:
            raise ValueError("XRay pixels must be a 2-D float32 array")

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])
