"""DICOM into an XRay: modality LUT (rescale), VOI LUT or window, MONOCHROME1 inverted, compressed syntaxes.

Only pixel data and technical attributes are read out; no patient or study attribute leaves this module.
Whatever the file holds, the outcome is an XRay or an ``XRayReadError`` with a plain message: the header is read
and checked (intended use, frames, size, bit depth) before any pixel is decoded, so a file claiming absurd
dimensions is refused without allocating them. What the library said is logged, not shown.
"""

from __future__ import annotations

import io
import logging
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.encaps import generate_fragments
from pydicom.errors import BytesLengthException, InvalidDicomError
from pydicom.pixels import apply_modality_lut, apply_voi_lut

from .codestream import check_claimed_size
from .errors import CorruptImageError, UnsupportedImageError
from .intended_use import check_chest_radiograph, check_grey_content
from .limits import check_dimensions
from .normalise import to_unit_range
from .shown import shown_value
from .xray import SourceFacts, XRay

log = logging.getLogger(__name__)

_GREY = {"MONOCHROME1", "MONOCHROME2"}
_COLOUR = {"RGB", "YBR_FULL", "YBR_FULL_422", "YBR_RCT", "YBR_ICT", "PALETTE COLOR"}
_BITS_ALLOCATED = {1, 8, 16, 32, 64}
# What pydicom (and the decoders it calls) raise on damaged input, as observed by tests/unit/test_imaging_fuzz.py.
_LIBRARY_ERRORS = (
    InvalidDicomError, BytesLengthException, EOFError, OSError, ValueError, TypeError, KeyError, AttributeError,
    IndexError, OverflowError, NotImplementedError, struct.error, zlib.error,
)


@dataclass(frozen=True)
class _ImageHeader:
    """The attributes that decide whether (and how) the pixels are decoded; all checked before decoding."""

    rows: int
    columns: int
    bits_stored: int
    photometric: str
    syntax_name: str | None
    encapsulated: bool


def read_dicom(path: Path, *, force: bool = False) -> XRay:
    dataset = _parse(path, force)
    header = _image_header(dataset)
    pixels = _decode(dataset, header)
    try:
        if header.photometric in _GREY:
            values = apply_voi_lut(apply_modality_lut(pixels, dataset), dataset)
        else:  # pydicom hands colour data back as RGB; take its luminance
            rgb = np.asarray(pixels, dtype=np.float32)
            if rgb.ndim != 3 or rgb.shape[-1] != 3:
                raise CorruptImageError("The colour DICOM image does not have three samples per pixel.")
            values = rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
            step = max(1, max(rgb.shape[:2]) // 256)
            check_grey_content(rgb[::step, ::step] / float(2 ** header.bits_stored - 1))
    except _LIBRARY_ERRORS as error:
        log.info("DICOM rescale or window not applicable: %r", error)
        raise CorruptImageError("The DICOM file's rescale or window attributes are damaged.") from None
    if values.ndim != 2:
        raise UnsupportedImageError("The DICOM image is not a single two-dimensional picture.")
    unit = to_unit_range(values, stretch=True)
    if header.photometric == "MONOCHROME1":  # low values are bright: invert so that 1 = bright everywhere
        unit = np.ascontiguousarray(1.0 - unit, dtype=np.float32)
    facts = SourceFacts("DICOM", header.columns, header.rows, header.bits_stored, header.photometric,
                        header.syntax_name)
    return XRay(unit, facts)


def _parse(path: Path, force: bool) -> Dataset:
    """Parse from memory: an element length in a damaged header (up to 4 GiB) then reads what the file holds,
    whereas reading it from a file object first allocates the length it claims. The caller bounds the file size."""
    try:
        return pydicom.dcmread(io.BytesIO(path.read_bytes()), force=force)
    except _LIBRARY_ERRORS as error:
        log.info("DICOM parse failed: %r", error)
        raise CorruptImageError("The file is damaged or is not a DICOM file PneumoDesk can parse.") from None


def _image_header(dataset: Dataset) -> _ImageHeader:
    """Read and check everything the decoder will trust. Attribute values convert lazily in pydicom, so a damaged
    value (``NumberOfFrames = '1A'``) surfaces here, as a typed error, and not in the middle of decoding."""
    try:
        if "PixelData" not in dataset:
            uid = dataset.get("SOPClassUID")
            kind = shown_value(getattr(uid, "name", None) or "unknown kind", limit=60)
            raise UnsupportedImageError(f"This DICOM file holds no image (it is a {kind} object).")
        sop_class = dataset.get("SOPClassUID")
        check_chest_radiograph(str(dataset.get("Modality") or ""), str(dataset.get("BodyPartExamined") or ""),
                               str(sop_class or ""), str(getattr(sop_class, "name", "") or ""))
        frames_value = dataset.get("NumberOfFrames")
        frames = 1 if frames_value is None or str(frames_value).strip() == "" else int(frames_value)
        rows, columns = int(dataset.Rows), int(dataset.Columns)
        bits_allocated = int(dataset.BitsAllocated)
        bits_stored = int(dataset.get("BitsStored") or bits_allocated)
        samples = int(dataset.get("SamplesPerPixel") or 1)
        photometric = str(dataset.get("PhotometricInterpretation") or "MONOCHROME2").strip().upper()
        meta = getattr(dataset, "file_meta", None)
        transfer_syntax = meta.get("TransferSyntaxUID") if meta is not None else None
        syntax_name = getattr(transfer_syntax, "name", None)
        encapsulated = bool(getattr(transfer_syntax, "is_encapsulated", False))
    except (UnsupportedImageError, CorruptImageError):
        raise
    except _LIBRARY_ERRORS as error:
        log.info("DICOM image attributes unreadable: %r", error)
        raise CorruptImageError(
            "The DICOM file's image attributes (size, frames, bit depth) are missing or damaged."
        ) from None
    if frames > 1:
        raise UnsupportedImageError(
            f"This DICOM file is a multi-frame series ({frames} frames); PneumoDesk reads single radiographs."
        )
    if frames < 1:
        raise CorruptImageError("The DICOM file says it holds no frames.")
    check_dimensions(columns, rows)
    if bits_allocated not in _BITS_ALLOCATED or not 1 <= bits_stored <= bits_allocated:
        raise CorruptImageError(
            f"The DICOM file's bit depth ({bits_stored} of {bits_allocated} bits) is damaged or not supported."
        )
    if samples not in (1, 3):
        raise UnsupportedImageError(f"The DICOM image has {samples} samples per pixel; expected 1 (grey) or 3.")
    if photometric not in _GREY | _COLOUR:
        raise UnsupportedImageError(
            f"The DICOM photometric interpretation {shown_value(photometric)!r} is not supported."
        )
    header = _ImageHeader(rows, columns, bits_stored, photometric, syntax_name, encapsulated)
    if encapsulated:
        check_claimed_size(_first_fragment(dataset), columns, rows)
    return header


def _first_fragment(dataset: Dataset) -> bytes:
    """The first non-empty fragment of encapsulated pixel data (after the basic offset table): the frame header."""
    try:
        for fragment in generate_fragments(dataset.PixelData):
            if fragment:
                return bytes(fragment)
    except _LIBRARY_ERRORS as error:
        log.info("DICOM pixel data fragments unreadable: %r", error)
        raise CorruptImageError("The DICOM pixel data is damaged or incomplete.") from None
    raise CorruptImageError("The DICOM pixel data is empty.")


def _decode(dataset: Dataset, header: _ImageHeader) -> np.ndarray:
    try:
        return dataset.pixel_array
    except (NotImplementedError, RuntimeError) as error:
        log.info("DICOM pixel decoding unavailable: %r", error)
        raise UnsupportedImageError(
            f"The image is compressed as {shown_value(header.syntax_name or 'an unknown transfer syntax', 60)}, "
            "which this workstation cannot decode."
        ) from None
    except _LIBRARY_ERRORS as error:
        log.info("DICOM pixel data damaged: %r", error)
        raise CorruptImageError("The DICOM pixel data is damaged or incomplete.") from None
