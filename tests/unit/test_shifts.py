"""The shift-suite transforms: valid grey images out, inputs untouched, each shift changes what it says it does."""

from __future__ import annotations

import numpy as np
import pytest

from pneumodesk.training.shifts import (
    SHIFT_SUITE,
    brightness,
    burned_in_text,
    crop,
    gamma,
    invert,
    jpeg,
    pad,
    random_shift,
    shift_by_name,
    shift_standardised,
)
from tests.builders import chest_like


def image() -> np.ndarray:
    return chest_like(160, 200, seed=3)


@pytest.mark.parametrize("shift", SHIFT_SUITE, ids=lambda shift: shift.family + ": " + shift.name)
def test_every_shift_gives_a_grey_image_in_range_and_leaves_its_input_alone(shift):
    pixels = image()
    before = pixels.copy()
    out = shift(pixels, np.random.default_rng(0))
    assert out.ndim == 2 and out.dtype == np.float32
    assert np.isfinite(out).all() and out.min() >= 0.0 and out.max() <= 1.0
    assert not np.array_equal(out, pixels) or out.shape != pixels.shape
    np.testing.assert_array_equal(pixels, before)
    np.testing.assert_array_equal(out, shift(pixels, np.random.default_rng(0)))  # deterministic for a seed


def test_suite_covers_every_family_the_issue_names():
    families = {shift.family for shift in SHIFT_SUITE}
    assert families == {
        "contrast and gamma", "window/level", "brightness", "blur", "sharpening", "noise", "JPEG quality",
        "resolution", "crop/border/padding", "rotation", "text and markers", "inversion",
    }
    assert len({shift.name for shift in SHIFT_SUITE}) == len(SHIFT_SUITE)
    assert shift_by_name("JPEG q 15").family == "JPEG quality"


def test_shifts_do_what_their_names_say():
    pixels, rng = image(), np.random.default_rng(0)
    assert gamma(2.0)(pixels, rng).mean() < pixels.mean()
    assert brightness(0.1)(pixels, rng).mean() > pixels.mean()
    np.testing.assert_allclose(invert()(invert()(pixels, rng), rng), pixels, atol=1e-6)
    assert crop(0.1)(pixels, rng).shape == (128, 160)
    bordered = pad(0.1, 0.0)(pixels, rng)
    assert bordered.shape == (192, 240) and bordered[:16].max() == 0.0
    assert np.abs(jpeg(10)(pixels, rng) - pixels).mean() > np.abs(jpeg(95)(pixels, rng) - pixels).mean()
    marked = burned_in_text()(pixels, rng)
    assert (marked > pixels + 0.2).mean() > 0.005  # bright text was burned in


def test_random_shift_and_standardised_augmentation_keep_shape_and_scale():
    rng = np.random.default_rng(1)
    for _ in range(30):
        out = random_shift(image(), rng, include_inversion=True)
        assert out.ndim == 2 and out.min() >= 0.0 and out.max() <= 1.0
    inputs = np.random.default_rng(2).standard_normal((6, 1, 32, 32)).astype(np.float16)
    before = inputs.copy()
    shifted = shift_standardised(inputs, np.random.default_rng(0), probability=1.0)
    assert shifted.shape == inputs.shape and shifted.dtype == np.float32
    np.testing.assert_allclose(shifted.mean(axis=(1, 2, 3)), 0.0, atol=1e-3)
    np.testing.assert_array_equal(inputs, before)
    untouched = shift_standardised(inputs, np.random.default_rng(0), probability=0.0)
    np.testing.assert_array_equal(untouched, inputs.astype(np.float32))
