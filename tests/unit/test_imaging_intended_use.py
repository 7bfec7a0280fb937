"""Outside the intended use: a DICOM that says it is not a chest radiograph gets a plain refusal, never pixels."""

from __future__ import annotations

import numpy as np
import pytest

from pneumodesk.imaging import OutsideIntendedUseError, read_xray
from tests.builders import chest_like, dicom_dataset, to_uint16, write_dicom, write_png
from tests.image_fuzz import pydicom_test_files

# The files are odd on purpose; pydicom's complaints about them are expected here (the app sends them to its log).
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:pydicom")


@pytest.mark.parametrize(
    "name,words",
    [("CT_small.dcm", "modality ct"), ("MR_small.dcm", "modality mr"), ("rtdose.dcm", "modality rtdose"),
     ("SC_rgb_jpeg.dcm", "modality ot"), ("dicomdirtests/77654033/CR1/6154", "body part cspine"),
     ("SC_jpeg_no_color_transform.dcm", "secondary capture")],
)
def test_pydicoms_non_chest_files_are_refused(name, words):
    with pytest.raises(OutsideIntendedUseError) as caught:
        read_xray(pydicom_test_files() / name)
    assert "not a chest radiograph" in str(caught.value).lower() and words in str(caught.value).lower()


def _dicom(tmp_path, name, **attributes):
    dataset = dicom_dataset(to_uint16(chest_like(64, 64)) >> 4)
    for key, value in attributes.items():
        if value is None:
            dataset.pop(key, None)
        else:
            setattr(dataset, key, value)
    return write_dicom(tmp_path / name, dataset)


@pytest.mark.parametrize("modality,body_part", [("CR", "CHEST"), ("DX", "CHEST"), ("DX", None), ("cr", " chest "),
                                                ("DX", "")])
def test_chest_radiographs_are_read(tmp_path, modality, body_part):
    assert read_xray(_dicom(tmp_path, "chest.dcm", Modality=modality, BodyPartExamined=body_part)).width == 64


def test_a_cr_of_the_knee_is_refused(tmp_path):
    with pytest.raises(OutsideIntendedUseError, match="not a chest radiograph \\(body part KNEE\\)"):
        read_xray(_dicom(tmp_path, "knee.dcm", Modality="CR", BodyPartExamined="KNEE"))


def test_an_mr_built_here_is_refused_before_decoding(tmp_path):
    with pytest.raises(OutsideIntendedUseError, match="modality MR"):
        read_xray(_dicom(tmp_path, "mr.dcm", Modality="MR"))


def test_a_hostile_modality_value_is_quoted_safely(tmp_path):
    with pytest.raises(OutsideIntendedUseError) as caught:
        read_xray(_dicom(tmp_path, "odd.dcm", Modality="X\nY" + "Z" * 40))
    assert "\n" not in str(caught.value) and len(str(caught.value)) < 200


def test_png_cannot_tell_and_keeps_working(tmp_path):
    assert read_xray(write_png(tmp_path / "chest.png", chest_like(64, 64))).width == 64


def _colour_photograph(height: int = 120, width: int = 160):
    """Sky over a green field with a yellow sun: nothing in it is grey."""
    import numpy as np

    y, x = np.mgrid[0:height, 0:width] / height
    picture = np.where((y > 0.6)[..., None], np.stack([0.2 + 0 * x, 0.55 + 0.1 * x, 0.15 + 0 * x], axis=-1),
                       np.stack([0.35 + 0 * y, 0.6 + 0.2 * y, 0.95 + 0 * y], axis=-1))
    picture[((x - 0.9) ** 2 + (y - 0.2) ** 2) < 0.01] = (1.0, 0.9, 0.2)
    return np.round(picture * 255).astype(np.uint8)


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_a_colour_picture_is_refused_as_outside_the_intended_use(tmp_path, suffix):
    from PIL import Image

    path = tmp_path / f"photo{suffix}"
    Image.fromarray(_colour_photograph(), mode="RGB").save(path)
    with pytest.raises(OutsideIntendedUseError) as caught:
        read_xray(path)
    assert str(caught.value).startswith("Outside the model's intended use: this is a colour picture")


def test_grey_content_in_a_colour_file_and_small_coloured_marks_are_read(tmp_path):
    """The training images themselves are RGB JPEGs with grey content; a radiograph exported with a coloured
    ruler or annotation (a few per cent of its pixels) is still a radiograph."""
    import numpy as np
    from PIL import Image

    grey = np.round(chest_like(200, 160) * 255).astype(np.uint8)
    rgb = np.repeat(grey[..., None], 3, axis=-1)
    Image.fromarray(rgb, mode="RGB").save(tmp_path / "grey-as-rgb.jpg", quality=70)
    marked = rgb.copy()
    marked[10:40, 10:40] = (255, 40, 40)  # 900 of 32 000 pixels: 2.8 %
    Image.fromarray(marked, mode="RGB").save(tmp_path / "marked.png")
    for name in ("grey-as-rgb.jpg", "marked.png"):
        assert read_xray(tmp_path / name).pixels.shape == (200, 160)
    heavier = rgb.copy()
    heavier[:, :40] = (40, 40, 255)  # a quarter of the picture coloured
    Image.fromarray(heavier, mode="RGB").save(tmp_path / "heavier.png")
    with pytest.raises(OutsideIntendedUseError):
        read_xray(tmp_path / "heavier.png")


def test_a_colour_dicom_that_claims_dx_is_still_refused(tmp_path):
    dataset = dicom_dataset(to_uint16(chest_like(64, 64)) >> 4)
    photo = _colour_photograph(64, 64)
    dataset.SamplesPerPixel, dataset.PhotometricInterpretation, dataset.PlanarConfiguration = 3, "RGB", 0
    dataset.BitsAllocated = dataset.BitsStored = 8
    dataset.HighBit = 7
    dataset.PixelData = photo.tobytes()
    with pytest.raises(OutsideIntendedUseError, match="colour picture"):
        read_xray(write_dicom(tmp_path / "photo.dcm", dataset))
    dataset.PixelData = np.repeat(photo.mean(axis=-1, keepdims=True).astype(np.uint8), 3, axis=-1).tobytes()
    assert read_xray(write_dicom(tmp_path / "grey.dcm", dataset)).pixels.shape == (64, 64)
