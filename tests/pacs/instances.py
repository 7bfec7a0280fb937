"""Small DICOM instances for the PACS tests, made from the project's sample X-rays: CR chest radiographs (with
made-up patient attributes), a structured report and a multi-frame object in the same study."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

SAMPLES = Path(__file__).resolve().parents[2] / "resources" / "samples"
CR = "1.2.840.10008.5.1.4.1.1.1"
BASIC_TEXT_SR = "1.2.840.10008.5.1.4.1.1.88.11"
MULTIFRAME_GREY_BYTE_SC = "1.2.840.10008.5.1.4.1.1.7.2"
PATIENT_ID = "PDK-TEST-4711"
PATIENT_NAME = "Testperson^Alice"


@dataclass(frozen=True)
class StudyIds:
    study_uid: str
    cr_series_uid: str
    other_series_uid: str


def sample_pixels(index: int, width: int = 128) -> np.ndarray:
    """One of the sample X-rays, grey, resized to ``width`` columns (aspect kept), uint8."""
    paths = sorted(SAMPLES.glob("*.jpeg"))
    with Image.open(paths[index % len(paths)]) as image:
        grey = image.convert("L")
        height = max(16, round(grey.height * width / grey.width))
        return np.asarray(grey.resize((width, height)), dtype=np.uint8)


def _base(sop_class: str, ids: StudyIds, series_uid: str, modality: str, number: int,
          patient_id: str = PATIENT_ID) -> FileDataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    dataset = FileDataset("", Dataset(), file_meta=meta, preamble=b"\0" * 128)
    dataset.SOPClassUID = sop_class
    dataset.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    dataset.PatientID = patient_id
    dataset.PatientName = PATIENT_NAME
    dataset.PatientBirthDate = "19700101"
    dataset.StudyInstanceUID = ids.study_uid
    dataset.SeriesInstanceUID = series_uid
    dataset.StudyDate = "20261201"
    dataset.StudyTime = "081500"
    dataset.AccessionNumber = "ACC0001"
    dataset.StudyID = "1"
    dataset.StudyDescription = "Chest X-ray"
    dataset.Modality = modality
    dataset.SeriesNumber = 1 if series_uid == ids.cr_series_uid else 2
    dataset.InstanceNumber = number
    return dataset


def cr_instance(ids: StudyIds, number: int, width: int = 128, patient_id: str = PATIENT_ID) -> FileDataset:
    dataset = _base(CR, ids, ids.cr_series_uid, "CR", number, patient_id)
    dataset.BodyPartExamined = "CHEST"
    dataset.SeriesDescription = "PA chest"
    pixels = sample_pixels(number, width)
    dataset.Rows, dataset.Columns = pixels.shape
    dataset.SamplesPerPixel = 1
    dataset.PhotometricInterpretation = "MONOCHROME2"
    dataset.BitsAllocated = 8
    dataset.BitsStored = 8
    dataset.HighBit = 7
    dataset.PixelRepresentation = 0
    dataset.PixelData = pixels.tobytes()
    return dataset


def structured_report(ids: StudyIds) -> FileDataset:
    dataset = _base(BASIC_TEXT_SR, ids, ids.other_series_uid, "SR", 1)
    dataset.SeriesDescription = "Report"
    dataset.ValueType = "CONTAINER"
    dataset.ContinuityOfContent = "SEPARATE"
    dataset.CompletionFlag = "COMPLETE"
    dataset.VerificationFlag = "UNVERIFIED"
    return dataset


def multiframe(ids: StudyIds, series_uid: str, frames: int = 3) -> FileDataset:
    """A multi-frame grey image in the CR chest series: refused for its frames, not its modality."""
    dataset = _base(MULTIFRAME_GREY_BYTE_SC, ids, series_uid, "CR", 2)
    dataset.BodyPartExamined = "CHEST"
    dataset.SeriesDescription = "Cine"
    pixels = np.stack([sample_pixels(i, 64) for i in range(frames)])
    dataset.NumberOfFrames = frames
    dataset.Rows, dataset.Columns = pixels.shape[1:]
    dataset.SamplesPerPixel = 1
    dataset.PhotometricInterpretation = "MONOCHROME2"
    dataset.BitsAllocated = 8
    dataset.BitsStored = 8
    dataset.HighBit = 7
    dataset.PixelRepresentation = 0
    dataset.PixelData = pixels.tobytes()
    return dataset


def sample_study(cr_count: int = 3, width: int = 128) -> tuple[StudyIds, list[FileDataset]]:
    """One study: a CR chest series of ``cr_count`` images (+ a multi-frame 'DX' instance in it), and an SR series."""
    ids = StudyIds(generate_uid(), generate_uid(), generate_uid())
    instances = [cr_instance(ids, n, width) for n in range(1, cr_count + 1)]
    instances.append(multiframe(ids, ids.cr_series_uid))
    instances.append(structured_report(ids))
    return ids, instances


def today() -> dt.date:
    return dt.date(2026, 12, 1)
