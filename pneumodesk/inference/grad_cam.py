"""Grad-CAM on one target layer (Selvaraju et al.): the heat maps without pytorch-grad-cam, OpenCV or torchvision."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from torch import nn


def grad_cam(model: nn.Module, layer: nn.Module, inputs: torch.Tensor) -> tuple[np.ndarray, torch.Tensor]:
    """Maps of shape (n, S, S), float32 in [0, 1], for the score ``model(inputs)[:, 0]``, and the model's outputs.

    A forward hook on ``layer`` keeps its activations A; the gradient of the summed scores with respect to A (taken
    with ``torch.autograd.grad``, so no parameter's ``.grad`` is touched) averaged over space weights A's channels;
    the map is ReLU(Σ_c w_c A_c), scaled to [0, 1] per image, resized bilinearly to the input's size and rescaled
    to [0, 1] — the same steps, in the same order, as pytorch-grad-cam's ``GradCAM`` with
    ``ClassifierOutputTarget(0)`` (tests/unit/test_grad_cam.py holds it as the oracle). The hook is always removed.
    ``inputs`` must require grad when the model's weights are frozen, or no gradient reaches A.
    """
    kept: list[torch.Tensor] = []

    def keep_activations(_module: nn.Module, _args: object, output: torch.Tensor) -> None:
        kept.append(output)

    handle = layer.register_forward_hook(keep_activations)
    try:
        outputs = model(inputs)
    finally:
        handle.remove()
    activations = kept[-1]
    (gradients,) = torch.autograd.grad(outputs.reshape(len(inputs), -1)[:, 0].sum(), activations)
    weights = gradients.mean(dim=(2, 3), keepdim=True)
    cams = torch.relu((weights * activations).sum(dim=1)).detach().numpy().astype(np.float32)
    height, width = inputs.shape[-2], inputs.shape[-1]
    maps = [_unit_range(_resize(_unit_range(cam), width, height)) for cam in cams]
    return np.stack(maps).astype(np.float32), outputs.detach()


def _unit_range(values: np.ndarray) -> np.ndarray:
    shifted = values - values.min()
    return np.asarray(shifted / (1e-7 + shifted.max()), dtype=np.float32)


def _resize(values: np.ndarray, width: int, height: int) -> np.ndarray:
    image = Image.fromarray(values.astype(np.float32), mode="F")
    return np.asarray(image.resize((width, height), Image.Resampling.BILINEAR), dtype=np.float32)
