"""A heat map blended over the grey X-ray in the classic "jet" colours, as an 8-bit RGB image for files."""

from __future__ import annotations

import numpy as np


def jet_colours(heatmap: np.ndarray) -> np.ndarray:
    """RGB float32 in [0, 1] for a map in [0, 1]: dark blue (0) → cyan → yellow → dark red (1), piecewise linear."""
    level = np.clip(heatmap, 0.0, 1.0)[..., None] * 4.0
    centres = np.array([3.0, 2.0, 1.0], dtype=np.float32)  # red, green, blue peak at 3/4, 1/2, 1/4
    return np.clip(1.5 - np.abs(level - centres), 0.0, 1.0).astype(np.float32)


def overlay_heatmap(grey: np.ndarray, heatmap: np.ndarray, image_weight: float = 0.6) -> np.ndarray:
    """``image_weight`` of the X-ray (float in [0, 1], shape (h, w)) plus the rest of the jet map, as uint8 RGB.

    The blend is rescaled so its brightest channel is 255, as pytorch-grad-cam's ``show_cam_on_image`` does.
    """
    if not 0.0 <= image_weight <= 1.0:
        raise ValueError(f"image_weight must lie in [0, 1], not {image_weight}")
    rgb = np.repeat(np.clip(grey, 0.0, 1.0)[..., None], 3, axis=2).astype(np.float32)
    blend = (1.0 - image_weight) * jet_colours(heatmap) + image_weight * rgb
    return np.asarray(np.round(255.0 * blend / max(float(blend.max()), 1e-7)), dtype=np.uint8)
