"""Predictor: calibrated, deterministic, consistent in batches, decisions at operating points, aligned heat maps."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pneumodesk.imaging import SourceFacts, XRay, preprocess
from pneumodesk.inference import NORMAL, PNEUMONIA, Predictor, predict_files
from pneumodesk.model import ModelBundleError, load_bundle
from tests.builders import chest_like, write_jpeg


def xray_of(pixels: np.ndarray) -> XRay:
    return XRay(pixels.astype(np.float32), SourceFacts("TEST", pixels.shape[1], pixels.shape[0], 8, "MONOCHROME2"))


@pytest.fixture
def predictor(tiny_bundle_dir):
    return Predictor.from_path(tiny_bundle_dir)


XRAYS = [xray_of(chest_like(120 + 10 * i, 100, seed=i)) for i in range(5)]


def test_probability_is_the_calibrated_logit(predictor):
    card = predictor.card
    with torch.no_grad():
        logit = float(predictor.model(torch.from_numpy(preprocess(XRAYS[0], card.input_size))[None]).reshape(-1)[0])
    expected = 1 / (1 + np.exp(-(logit / card.temperature + card.logit_bias)))
    assert predictor.predict(XRAYS[0]).probability == pytest.approx(expected, rel=1e-5)


def test_same_xray_same_answer(predictor, tiny_bundle_dir):
    first = predictor.predict(XRAYS[1])
    again = Predictor.from_path(tiny_bundle_dir).predict(XRAYS[1])
    assert first == again


def test_batch_equals_one_by_one(predictor):
    batch = predictor.predict_batch(XRAYS)
    for xray, from_batch in zip(XRAYS, batch, strict=True):
        assert predictor.predict(xray).probability == pytest.approx(from_batch.probability, abs=1e-6)


def test_decision_follows_the_operating_point(predictor):
    assert predictor.operating_point_name == "balanced"
    sensitive = predictor.with_operating_point("high-sensitivity")
    for p in (0.0, 0.29, 0.3, 0.49, 0.5, 0.9):
        assert predictor.decide(p).label == (PNEUMONIA if p >= 0.5 else NORMAL)
        assert sensitive.decide(p).label == (PNEUMONIA if p >= 0.3 else NORMAL)
    assert sensitive.model is predictor.model
    prediction = predictor.predict(XRAYS[2])
    assert prediction.model_version == "test-1" and prediction.threshold == 0.5


def test_unknown_operating_point(tiny_bundle_dir):
    with pytest.raises(ModelBundleError, match="balanced, high-sensitivity"):
        Predictor.from_path(tiny_bundle_dir, "aggressive")


def test_heat_map_is_aligned_to_the_image_and_deterministic(predictor):
    xray = xray_of(chest_like(150, 110, seed=9))
    prediction, heatmap = predictor.predict_with_heatmap(xray)
    assert heatmap.shape == (150, 110) and heatmap.dtype == np.float32
    assert heatmap.min() >= 0.0 and heatmap.max() <= 1.0
    assert prediction.probability == pytest.approx(predictor.predict(xray).probability, abs=1e-5)
    np.testing.assert_array_equal(heatmap, predictor.heatmap(xray))
    # Hooks are released: plain prediction afterwards is unaffected and fast paths keep working.
    assert not predictor.model.grad_cam_layer._forward_hooks


class _CornerFeatures(torch.nn.Module):
    """Activations that exist only in the top-left quarter of the input."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mask = torch.zeros_like(x)
        mask[..., : x.shape[-2] // 2, : x.shape[-1] // 2] = 1.0
        return torch.relu(x + 3.0) * mask


class _CornerNet(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.grad_cam_layer = _CornerFeatures()
        self.unused = torch.nn.Parameter(torch.zeros(1), requires_grad=False)  # Grad-CAM reads the device from it

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.grad_cam_layer(x).mean(dim=(2, 3))


def test_heat_map_lands_where_the_score_comes_from(tiny_bundle_dir):
    """A network that only looks at the top-left quarter must get a map in the top-left quarter of the *original*,
    non-square image: this checks the map is mapped back through the squash correctly."""
    predictor = Predictor.from_path(tiny_bundle_dir)
    predictor.model = _CornerNet()
    _, heatmap = predictor.predict_with_heatmap(xray_of(chest_like(300, 120, seed=2)))
    assert heatmap.shape == (300, 120)
    corner = heatmap[:150, :60].sum()
    assert corner / heatmap.sum() > 0.95


def test_files_in_a_batch_keep_order_and_report_bad_ones(predictor, tmp_path):
    good = [write_jpeg(tmp_path / f"{i}.jpg", chest_like(90, 90, seed=i)) for i in range(5)]
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"nope")
    paths = [good[0], bad, *good[1:]]
    results = list(predict_files(predictor, paths, batch_size=2))
    assert [r.path for r in results] == paths
    assert results[1].prediction is None and "not an image" in results[1].error
    assert all(r.prediction is not None and r.error is None for r in results if r.path != bad)


def test_loaded_default_bundle_verifies(tiny_bundle_dir):
    assert load_bundle(tiny_bundle_dir).card.version == "test-1"
