"""Every supported format reads into the same XRay: grey, float32 in [0, 1], 1 = bright, no patient data."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from PIL import Image

from pneumodesk.imaging import XRay, read_xray
from tests.builders import (
    chest_like,
    dicom_dataset,
    jpeg_compressed_dicom,
    to_uint16,
    write_dicom,
    write_jpeg,
    write_png,
)

PIXELS = chest_like(96, 80)


def assert_xray(xray: XRay, height: int = 96, width: int = 80) -> None:
    assert xray.pixels.dtype == np.float32
    assert xray.pixels.shape == (height, width)
    assert xray.pixels.min() >= 0.0 and xray.pixels.max() <= 1.0
    assert (xray.source.width, xray.source.height) == (width, height)


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA", "LA", "P"])
def test_8_bit_png_in_any_colour_mode_reads_as_grey(tmp_path, mode):
    xray = read_xray(write_png(tmp_path / "x.png", PIXELS, mode))
    assert_xray(xray)
    assert xray.source.format == "PNG" and xray.source.bit_depth == 8
    assert np.abs(xray.pixels - PIXELS).max() < 0.02


def test_16_bit_png_keeps_its_precision(tmp_path):
    xray = read_xray(write_png(tmp_path / "x16.png", PIXELS, "I;16"))
    assert_xray(xray)
    assert xray.source.bit_depth == 16
    assert np.abs(xray.pixels - PIXELS).max() < 1e-4  # far finer than 8-bit steps (0.004)


@pytest.mark.parametrize("mode", ["L", "RGB"])
def test_jpeg_grey_and_rgb(tmp_path, mode):
    xray = read_xray(write_jpeg(tmp_path / "x.jpg", PIXELS, mode))
    assert_xray(xray)
    assert xray.source.format == "JPEG"
    assert correlation(xray.pixels, PIXELS) > 0.99


def test_exif_orientation_is_applied(tmp_path):
    # Orientation 6 means "rotate 90° clockwise to display"; the stored pixels are the displayed ones turned back.
    stored = np.rot90(PIXELS, k=1)  # counter-clockwise, so that a clockwise turn restores PIXELS
    xray = read_xray(write_jpeg(tmp_path / "rotated.jpg", stored, exif_orientation=6))
    assert_xray(xray, 96, 80)
    assert correlation(xray.pixels, PIXELS) > 0.99


def test_dicom_applies_rescale_and_window(tmp_path):
    stored = to_uint16(PIXELS) >> 4  # 12-bit values
    plain = read_xray(write_dicom(tmp_path / "plain.dcm", dicom_dataset(stored)))
    windowed = read_xray(
        write_dicom(tmp_path / "w.dcm", dicom_dataset(stored, slope=2.0, intercept=-1000.0, window=(2000.0, 1000.0)))
    )
    assert_xray(plain)
    assert_xray(windowed)
    assert correlation(plain.pixels, PIXELS) > 0.999
    # The window (center 2000, width 1000 in rescaled units = stored 1250..1750) clips the ends and stretches the rest.
    rescaled = stored * 2.0 - 1000.0
    inside = (rescaled > 1550) & (rescaled < 2450)
    assert (windowed.pixels[rescaled <= 1450] == 0.0).all()
    assert (windowed.pixels[rescaled >= 2550] == 1.0).all()
    assert correlation(windowed.pixels[inside], PIXELS[inside]) > 0.99


def test_monochrome1_is_inverted(tmp_path):
    stored = to_uint16(PIXELS) >> 4
    mono2 = read_xray(write_dicom(tmp_path / "m2.dcm", dicom_dataset(stored)))
    mono1 = read_xray(write_dicom(tmp_path / "m1.dcm", dicom_dataset(stored, photometric="MONOCHROME1")))
    assert mono1.source.photometric == "MONOCHROME1"
    np.testing.assert_allclose(mono1.pixels, 1.0 - mono2.pixels, atol=1e-6)


def test_jpeg_compressed_dicom_is_decoded_by_the_plugin(tmp_path):
    xray = read_xray(jpeg_compressed_dicom(tmp_path / "jpeg.dcm", PIXELS))
    assert_xray(xray)
    assert "JPEG Baseline" in xray.source.transfer_syntax
    assert correlation(xray.pixels, PIXELS) > 0.99


def test_rle_compressed_dicom(tmp_path):
    from pydicom.uid import RLELossless

    dataset = dicom_dataset(to_uint16(PIXELS) >> 4)
    dataset.compress(RLELossless)
    xray = read_xray(write_dicom(tmp_path / "rle.dcm", dataset))
    assert_xray(xray)
    assert correlation(xray.pixels, PIXELS) > 0.999


def test_dicom_without_preamble_is_still_read(tmp_path):
    path = write_dicom(tmp_path / "old.dcm", dicom_dataset(to_uint16(PIXELS) >> 4), preamble=False)
    assert path.read_bytes()[128:132] != b"DICM"
    assert_xray(read_xray(path))


def test_no_patient_identifier_is_carried_forward(tmp_path):
    xray = read_xray(write_dicom(tmp_path / "p.dcm", dicom_dataset(to_uint16(PIXELS) >> 4)))
    facts = dataclasses.asdict(xray.source)
    assert "SECRET-123" not in repr(facts) and "Doe" not in repr(facts)
    assert set(facts) == {"format", "width", "height", "bit_depth", "photometric", "transfer_syntax"}


def test_tiff_is_read_too(tmp_path):
    path = tmp_path / "x.tif"
    Image.fromarray(to_uint16(PIXELS)).save(path)
    assert_xray(read_xray(path))


def test_jpeg_2000_compressed_dicom(tmp_path):
    from pydicom.uid import JPEG2000Lossless

    dataset = dicom_dataset(to_uint16(PIXELS) >> 4)
    dataset.compress(JPEG2000Lossless)
    xray = read_xray(write_dicom(tmp_path / "j2k.dcm", dataset))
    assert_xray(xray)
    assert "JPEG 2000" in xray.source.transfer_syntax
    assert correlation(xray.pixels, PIXELS) > 0.999


def test_32_bit_integer_and_float_images_are_stretched(tmp_path):
    wide = (PIXELS * 200_000).astype(np.int32)  # beyond 16 bits
    Image.fromarray(wide, mode="I").save(tmp_path / "wide.tif")
    Image.fromarray(PIXELS * 5.0 - 1.0, mode="F").save(tmp_path / "float.tif")
    for name in ("wide.tif", "float.tif"):
        xray = read_xray(tmp_path / name)
        assert_xray(xray)
        assert xray.source.bit_depth == 32
        assert xray.pixels.min() == 0.0 and xray.pixels.max() == 1.0
        assert correlation(xray.pixels, PIXELS) > 0.999
