"""Builders for the small fixtures tests need: X-ray-like images in every format, DICOM files, model bundles."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import (
    ExplicitVRLittleEndian,
    JPEGBaseline8Bit,
    SecondaryCaptureImageStorage,
    generate_uid,
)

from pneumodesk.imaging import PREPROCESSING_VERSION
from pneumodesk.model import ModelBundle, ModelCard, OperatingPoint, build_model


def chest_like(height: int = 96, width: int = 80, seed: int = 0) -> np.ndarray:
    """A smooth grey picture with two darker 'lungs' and a gradient, in [0, 1]; no two rows or columns alike."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    y /= height
    x /= width
    picture = 0.35 + 0.4 * y + 0.1 * x
    for cx in (0.3, 0.7):
        picture -= 0.25 * np.exp(-(((x - cx) / 0.12) ** 2 + ((y - 0.5) / 0.25) ** 2))
    picture += 0.02 * rng.standard_normal((height, width)).astype(np.float32)
    return np.clip(picture, 0.0, 1.0).astype(np.float32)


def to_uint8(pixels: np.ndarray) -> np.ndarray:
    return np.round(pixels * 255).astype(np.uint8)


def to_uint16(pixels: np.ndarray) -> np.ndarray:
    return np.round(pixels * 65535).astype(np.uint16)


def write_png(path: Path, pixels: np.ndarray, mode: str = "L") -> Path:
    if mode == "I;16":
        Image.fromarray(to_uint16(pixels)).save(path)  # Pillow writes uint16 arrays as 16-bit grey PNG
    else:
        Image.fromarray(to_uint8(pixels)).convert(mode).save(path)
    return path


def write_jpeg(path: Path, pixels: np.ndarray, mode: str = "L", exif_orientation: int | None = None) -> Path:
    image = Image.fromarray(to_uint8(pixels)).convert(mode)
    exif = Image.Exif()
    if exif_orientation is not None:
        exif[0x0112] = exif_orientation
    image.save(path, format="JPEG", quality=95, exif=exif.tobytes())
    return path


def png_with_claimed_size(path: Path, width: int, height: int) -> Path:
    """A PNG whose header claims width×height although it holds a few bytes (a decompression-bomb shape)."""
    buffer = io.BytesIO()
    Image.new("L", (40, 40)).save(buffer, format="PNG")
    data = bytearray(buffer.getvalue())
    ihdr = 8 + 8  # signature, then length + type of the IHDR chunk
    data[ihdr : ihdr + 8] = struct.pack(">II", width, height)
    data[ihdr + 13 : ihdr + 17] = struct.pack(">I", zlib.crc32(bytes(data[ihdr - 4 : ihdr + 13])) & 0xFFFFFFFF)
    path.write_bytes(bytes(data))
    return path


def dicom_dataset(
    stored: np.ndarray,
    *,
    photometric: str = "MONOCHROME2",
    bits_stored: int = 12,
    slope: float | None = None,
    intercept: float | None = None,
    window: tuple[float, float] | None = None,
) -> FileDataset:
    """A single-frame DX-like DICOM dataset with uncompressed 16-bit pixels and made-up patient attributes."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    dataset = FileDataset("", {}, file_meta=meta, preamble=b"\0" * 128)
    dataset.SOPClassUID = meta.MediaStorageSOPClassUID
    dataset.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    dataset.PatientName = "Doe^Jane"
    dataset.PatientID = "SECRET-123"
    dataset.Modality = "DX"
    dataset.Rows, dataset.Columns = stored.shape
    dataset.SamplesPerPixel = 1
    dataset.PhotometricInterpretation = photometric
    dataset.BitsAllocated = 16
    dataset.BitsStored = bits_stored
    dataset.HighBit = bits_stored - 1
    dataset.PixelRepresentation = 0
    if slope is not None:
        dataset.RescaleSlope = slope
        dataset.RescaleIntercept = intercept or 0.0
    if window is not None:
        dataset.WindowCenter, dataset.WindowWidth = window
    dataset.PixelData = stored.astype(np.uint16).tobytes()
    return dataset


def write_dicom(path: Path, dataset: FileDataset, *, preamble: bool = True) -> Path:
    dataset.save_as(path, enforce_file_format=preamble)
    if not preamble:  # strip the 128-byte preamble and "DICM" magic, as some old systems write
        raw = path.read_bytes()
        if raw[128:132] == b"DICM":
            path.write_bytes(raw[132:])
    return path


def jpeg_compressed_dicom(path: Path, pixels: np.ndarray) -> Path:
    """8-bit MONOCHROME2 DICOM with JPEG Baseline pixel data (decoded through pydicom's pylibjpeg plugin)."""
    buffer = io.BytesIO()
    Image.fromarray(to_uint8(pixels)).save(buffer, format="JPEG", quality=95)
    dataset = dicom_dataset(to_uint8(pixels).astype(np.uint16), bits_stored=8)
    dataset.BitsAllocated = 8
    dataset.BitsStored = 8
    dataset.HighBit = 7
    dataset.PixelData = encapsulate([buffer.getvalue()])
    dataset["PixelData"].VR = "OB"
    dataset.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    dataset.save_as(path, enforce_file_format=True)
    return path


def make_tiny_bundle(input_size: int = 32, seed: int = 0) -> ModelBundle:
    import torch

    torch.manual_seed(seed)
    card = ModelCard(
        name="test model",
        version="test-1",
        architecture="pneumonet-tiny",
        input_size=input_size,
        preprocessing_version=PREPROCESSING_VERSION,
        temperature=1.5,
        logit_bias=0.1,
        operating_points={
            "high-sensitivity": OperatingPoint(0.3, 0.95, 0.6),
            "balanced": OperatingPoint(0.5, 0.9, 0.9),
        },
        default_operating_point="balanced",
        validation={"roc_auc": 0.5, "roc_auc_ci95": [0.4, 0.6]},
        training={"data": "synthetic"},
        intended_use="tests only",
        limitations=["random weights"],
        created="2026-01-01T00:00:00+00:00",
    )
    return ModelBundle.from_model(build_model("pneumonet-tiny"), card)


def write_labelled_folder(root: Path, per_class: int, rng: np.random.Generator, size: int = 64) -> Path:
    """Synthetic learnable data: PNEUMONIA images carry bright opacities in the lung fields, NORMAL ones do not."""
    for label, name in enumerate(("NORMAL", "PNEUMONIA")):
        folder = root / name
        folder.mkdir(parents=True)
        for i in range(per_class):
            pixels = chest_like(size, size, seed=int(rng.integers(1 << 30)))
            if label:
                y, x = np.mgrid[0:size, 0:size] / size
                for _ in range(3):
                    cy, cx = rng.uniform(0.3, 0.7), rng.choice([0.3, 0.7]) + rng.uniform(-0.05, 0.05)
                    pixels += 0.35 * np.exp(-(((x - cx) / 0.08) ** 2 + ((y - cy) / 0.08) ** 2))
            write_jpeg(
                folder / f"person{label}{i:03d}_{'virus' if label else 'normal'}_{i}.jpeg", np.clip(pixels, 0, 1)
            )
    return root
