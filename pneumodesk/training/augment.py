"""Training-time augmentation on batches of preprocessed inputs (after ``preprocess``, never instead of it)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def augment_batch(inputs: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Small random rotations (±10°), zoom (0.9–1.15), shifts (±8 %) and a light blur on half of the images.

    Chest X-rays keep their laterality, so there is no horizontal flip. Padding is 0, the standardised mean.
    """
    n = inputs.shape[0]

    def uniform(low: float, high: float) -> torch.Tensor:
        return low + (high - low) * torch.rand(n, generator=generator)

    angle = uniform(-10.0, 10.0) * math.pi / 180.0
    scale = uniform(0.9, 1.15)
    shift_x, shift_y = uniform(-0.08, 0.08), uniform(-0.08, 0.08)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos, -sin, shift_x], dim=1), torch.stack([sin, cos, shift_y], dim=1)], dim=1).to(
        inputs.dtype
    )
    grid = F.affine_grid(theta, list(inputs.shape), align_corners=False)
    out = F.grid_sample(inputs, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    blurred = F.avg_pool2d(F.pad(out, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
    blur = (torch.rand(n, generator=generator) < 0.5).to(inputs.dtype).view(n, 1, 1, 1)
    return blur * (0.5 * out + 0.5 * blurred) + (1 - blur) * out
