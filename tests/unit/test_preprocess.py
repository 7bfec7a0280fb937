"""The one preprocessing function: same shape and range everywhere; a full-size image looks like a training one."""

from __future__ import annotations

import inspect

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

import pneumodesk.inference.batch as batch_module
import pneumodesk.inference.predictor as predictor_module
import pneumodesk.training.datasets as datasets_module
from pneumodesk.imaging import SourceFacts, XRay, preprocess, read_xray
from pneumodesk.training.datasets import load_model_inputs
from tests.builders import chest_like, write_jpeg, write_png


def xray_of(pixels: np.ndarray) -> XRay:
    return XRay(pixels.astype(np.float32), SourceFacts("TEST", pixels.shape[1], pixels.shape[0], 8, "MONOCHROME2"))


@settings(max_examples=40, deadline=None)
@given(
    height=st.integers(32, 600),
    width=st.integers(32, 600),
    size=st.sampled_from([32, 64, 224]),
    seed=st.integers(0, 1000),
)
def test_any_image_becomes_a_standardised_square(height, width, size, seed):
    pixels = np.random.default_rng(seed).random((height, width), dtype=np.float32)
    out = preprocess(xray_of(pixels), size)
    assert out.shape == (1, size, size) and out.dtype == np.float32
    assert np.isfinite(out).all()
    assert abs(float(out.mean())) < 1e-3
    assert abs(float(out.std()) - 1.0) < 1e-2


def test_full_size_image_arrives_like_the_224_training_image():
    training_like = chest_like(224, 224, seed=3)
    # A "hospital original": the same anatomy at 1500×1200 (not square), as the training images were squashed from.
    original = np.asarray(
        Image.fromarray(training_like, mode="F").resize((1200, 1500), Image.Resampling.BICUBIC), dtype=np.float32
    )
    a = preprocess(xray_of(training_like), 224)
    b = preprocess(xray_of(np.clip(original, 0, 1)), 224)
    assert np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.99
    assert np.abs(a - b).mean() < 0.1


def test_bit_depth_and_exposure_do_not_move_the_input(tmp_path):
    pixels = chest_like(256, 256, seed=4)
    eight = preprocess(read_xray(write_png(tmp_path / "8.png", pixels)), 128)
    sixteen = preprocess(read_xray(write_png(tmp_path / "16.png", pixels, "I;16")), 128)
    darker = preprocess(xray_of(pixels * 0.5), 128)
    assert np.abs(eight - sixteen).max() < 0.05
    assert np.abs(sixteen - darker).max() < 1e-3


def test_orientation_is_fixed_before_preprocessing(tmp_path):
    pixels = chest_like(240, 200, seed=5)
    upright = preprocess(read_xray(write_jpeg(tmp_path / "up.jpg", pixels)), 64)
    turned = preprocess(read_xray(write_jpeg(tmp_path / "turned.jpg", np.rot90(pixels), exif_orientation=6)), 64)
    assert np.corrcoef(upright.ravel(), turned.ravel())[0, 1] > 0.99


def test_training_and_prediction_call_the_same_function(tmp_path):
    for module in (datasets_module, predictor_module, batch_module):
        assert module.preprocess is preprocess
        assert "preprocess(" in inspect.getsource(module)
    path = write_jpeg(tmp_path / "x.jpg", chest_like(300, 260))
    training_input, failures = load_model_inputs([path], 64)
    assert failures == []
    np.testing.assert_allclose(training_input[0].astype(np.float32), preprocess(read_xray(path), 64), atol=5e-3)


def test_deterministic():
    xray = xray_of(chest_like(500, 400, seed=6))
    np.testing.assert_array_equal(preprocess(xray, 224), preprocess(xray, 224))
