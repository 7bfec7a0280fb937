"""Outside the intended use: a DICOM that says it is not a chest radiograph gets a plain refusal, never pixels."""

from __future__ import annotations

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
