"""Our Grad-CAM against pytorch-grad-cam (a dev-only oracle): same maps within 1e-4, same overlay within 3/255."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from pneumodesk.inference import Predictor
from pneumodesk.inference.grad_cam import grad_cam
from pneumodesk.inference.heatmap_overlay import overlay_heatmap
from tests.builders import chest_like

pytorch_grad_cam = pytest.importorskip("pytorch_grad_cam")
from pytorch_grad_cam.utils.image import show_cam_on_image  # noqa: E402
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget  # noqa: E402

# The oracle resizes with OpenCV, we with Pillow: both bilinear with half-pixel centres, so only float rounding
# separates them. The overlay's jet is the textbook piecewise-linear one; OpenCV's table differs by a few levels.
MAP_TOLERANCE = 1e-4
OVERLAY_TOLERANCE = 3 / 255


@pytest.fixture
def inputs(tiny_bundle_dir) -> tuple[Predictor, torch.Tensor]:
    predictor = Predictor.from_path(tiny_bundle_dir)
    size = predictor.card.input_size
    rng = np.random.default_rng(4)
    batch = torch.from_numpy(rng.random((3, 1, size, size), dtype=np.float32))
    return predictor, batch


def test_maps_match_pytorch_grad_cam(inputs) -> None:
    predictor, batch = inputs
    layer = predictor.model.grad_cam_layer

    ours, outputs = grad_cam(predictor.model, layer, batch.clone().requires_grad_(True))
    with pytorch_grad_cam.GradCAM(model=predictor.model, target_layers=[layer]) as cam:
        theirs = cam(input_tensor=batch.clone().requires_grad_(True), targets=[ClassifierOutputTarget(0)] * 3)
        their_outputs = cam.outputs.detach()

    assert ours.shape == theirs.shape == (3, batch.shape[-2], batch.shape[-1])
    assert ours.dtype == np.float32
    np.testing.assert_allclose(ours, theirs, atol=MAP_TOLERANCE)
    torch.testing.assert_close(outputs, their_outputs)
    assert not layer._forward_hooks and not layer._backward_hooks


def test_grad_cam_leaves_no_parameter_gradient(inputs) -> None:
    predictor, batch = inputs
    for parameter in predictor.model.parameters():
        parameter.requires_grad_(True)

    grad_cam(predictor.model, predictor.model.grad_cam_layer, batch.requires_grad_(True))

    assert all(parameter.grad is None for parameter in predictor.model.parameters())


def test_overlay_matches_show_cam_on_image() -> None:
    grey = chest_like(90, 70, seed=3).astype(np.float32)
    heatmap = np.asarray(Image.fromarray(chest_like(90, 70, seed=8).astype(np.float32), mode="F"), dtype=np.float32)

    ours = overlay_heatmap(grey, heatmap, image_weight=0.6)
    theirs = show_cam_on_image(np.repeat(grey[..., None], 3, axis=2), heatmap, use_rgb=True, image_weight=0.6)

    assert ours.shape == theirs.shape == (90, 70, 3) and ours.dtype == np.uint8
    np.testing.assert_allclose(ours / 255, theirs / 255, atol=OVERLAY_TOLERANCE)


def test_overlay_refuses_a_weight_outside_the_unit_range() -> None:
    with pytest.raises(ValueError, match="image_weight"):
        overlay_heatmap(np.zeros((2, 2)), np.zeros((2, 2)), image_weight=1.5)
