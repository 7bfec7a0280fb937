"""Bad input gets a typed error with a plain message; nothing crashes or hangs."""

from __future__ import annotations

import numpy as np
import pytest

import pneumodesk.imaging.reader as reader_module
from pneumodesk.imaging import (
    CorruptImageError,
    EmptyFileError,
    ImageTooLargeError,
    UnreadableFileError,
    UnsupportedImageError,
    XRayReadError,
    read_xray,
)
from tests.builders import (
    chest_like,
    dicom_dataset,
    png_with_claimed_size,
    to_uint16,
    write_dicom,
    write_jpeg,
    write_png,
)


def expect(error_type: type[XRayReadError], path, words: str) -> None:
    with pytest.raises(error_type) as caught:
        read_xray(path)
    assert words in str(caught.value).lower()


def test_missing_file(tmp_path):
    expect(UnreadableFileError, tmp_path / "gone.png", "does not exist")


def test_folder_instead_of_file(tmp_path):
    expect(UnreadableFileError, tmp_path, "folder")


def test_empty_file(tmp_path):
    (tmp_path / "empty.png").write_bytes(b"")
    expect(EmptyFileError, tmp_path / "empty.png", "empty")


def test_text_file_with_an_image_name(tmp_path):
    (tmp_path / "notes.png").write_text("this is not an image\n" * 20)
    expect(UnsupportedImageError, tmp_path / "notes.png", "not an image")


def test_random_bytes(tmp_path):
    (tmp_path / "noise.jpg").write_bytes(np.random.default_rng(1).bytes(5000))
    expect(UnsupportedImageError, tmp_path / "noise.jpg", "not an image")


@pytest.mark.parametrize("suffix,writer", [(".png", write_png), (".jpg", write_jpeg)])
def test_truncated_images(tmp_path, suffix, writer):
    path = writer(tmp_path / f"whole{suffix}", chest_like(200, 200))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    expect(CorruptImageError, path, "damaged or incomplete")


def test_decompression_bomb_is_refused_before_decoding(tmp_path):
    expect(ImageTooLargeError, png_with_claimed_size(tmp_path / "bomb.png", 11_000, 11_000), "million pixels")
    expect(ImageTooLargeError, png_with_claimed_size(tmp_path / "huge.png", 40_000, 40_000), "million pixels")


def test_absurdly_small_image(tmp_path):
    expect(UnsupportedImageError, write_png(tmp_path / "tiny.png", chest_like(10, 10)), "at least")


def test_oversized_file_is_refused_unread(tmp_path, monkeypatch):
    monkeypatch.setattr(reader_module, "MAX_FILE_BYTES", 100)
    expect(ImageTooLargeError, write_png(tmp_path / "big.png", chest_like(64, 64)), "larger than")


def test_blank_image(tmp_path):
    expect(EmptyFileError, write_png(tmp_path / "blank.png", np.full((64, 64), 0.5, np.float32)), "blank")


def test_multi_frame_dicom_is_refused(tmp_path):
    frames = np.stack([to_uint16(chest_like(64, 64)) >> 4] * 3)
    dataset = dicom_dataset(frames[0])
    dataset.NumberOfFrames = 3
    dataset.PixelData = frames.astype(np.uint16).tobytes()
    expect(UnsupportedImageError, write_dicom(tmp_path / "cine.dcm", dataset), "multi-frame")


def test_dicom_without_pixels_is_refused(tmp_path):
    from pydicom.uid import BasicTextSRStorage

    dataset = dicom_dataset(to_uint16(chest_like(64, 64)) >> 4)
    del dataset.PixelData
    dataset.SOPClassUID = BasicTextSRStorage
    expect(UnsupportedImageError, write_dicom(tmp_path / "report.dcm", dataset), "holds no image")


def test_dicom_with_truncated_pixel_data(tmp_path):
    path = write_dicom(tmp_path / "cut.dcm", dicom_dataset(to_uint16(chest_like(64, 64)) >> 4))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 3000])
    with pytest.raises(XRayReadError) as caught:
        read_xray(path)
    assert isinstance(caught.value, CorruptImageError | UnsupportedImageError)


def test_garbage_with_dicom_magic(tmp_path):
    path = tmp_path / "fake.dcm"
    path.write_bytes(b"\0" * 128 + b"DICM" + np.random.default_rng(2).bytes(400))
    with pytest.raises(XRayReadError):
        read_xray(path)
