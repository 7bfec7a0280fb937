"""DICOM into an XRay: modality LUT (rescale), VOI LUT or window, MONOCHROME1 inverted, compressed syntaxes.

Only pixel data and technical attributes are read out; no patient or study attribute leaves this module.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
from pydicom.errors import InvalidDicomError
from pydicom.pixels import apply_modality_lut, apply_voi_lut

from .errors import CorruptImageError, UnsupportedImageError
from .limits import check_dimensions
from .normalise import to_unit_range
from .xray import SourceFacts, XRay

_GREY = {"MONOCHROME1", "MONOCHROME2"}
_COLOUR = {"RGB", "YBR_FULL", "YBR_FULL_422", "YBR_RCT", "YBR_ICT", "PALETTE COLOR"}


def read_dicom(path: Path, *, force: bool = False) -> XRay:
    try:
        dataset = pydicom.dcmread(path, force=force)
    except (InvalidDicomError, EOFError) as error:
        raise CorruptImageError(f"The DICOM file is damaged or not DICOM ({error}).") from None
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as error:
        raise CorruptImageError(f"The DICOM file could not be parsed ({error}).") from None

    if "PixelData" not in dataset:
        kind = getattr(getattr(dataset, "SOPClassUID", None), "name", None) or "unknown kind"
        raise UnsupportedImageError(f"This DICOM file holds no image (it is a {kind} object).")
    frames = int(getattr(dataset, "NumberOfFrames", 1) or 1)
    if frames > 1:
        raise UnsupportedImageError(
            f"This DICOM file is a multi-frame series ({frames} frames); PneumoDesk reads single radiographs."
        )
    try:
        rows, columns = int(dataset.Rows), int(dataset.Columns)
        bits_stored = int(getattr(dataset, "BitsStored", dataset.BitsAllocated))
    except (AttributeError, TypeError, ValueError):
        raise CorruptImageError(
            "The DICOM file lacks its image size attributes (Rows, Columns, BitsAllocated)."
        ) from None
    check_dimensions(columns, rows)
    photometric = str(getattr(dataset, "PhotometricInterpretation", "MONOCHROME2")).strip().upper()
    if photometric not in _GREY | _COLOUR:
        raise UnsupportedImageError(f"The DICOM photometric interpretation {photometric!r} is not supported.")
    transfer_syntax = dataset.file_meta.get("TransferSyntaxUID") if hasattr(dataset, "file_meta") else None
    syntax_name = getattr(transfer_syntax, "name", None)

    try:
        pixels = dataset.pixel_array
    except (NotImplementedError, RuntimeError) as error:
        raise UnsupportedImageError(
            f"The image is compressed as {syntax_name or 'an unknown transfer syntax'}, which this workstation "
            f"cannot decode ({error})."
        ) from None
    except (ValueError, OSError, AttributeError, KeyError, TypeError) as error:
        raise CorruptImageError(f"The DICOM pixel data is damaged or incomplete ({error}).") from None

    if photometric in _GREY:
        values = apply_voi_lut(apply_modality_lut(pixels, dataset), dataset)
    else:  # pydicom hands colour data back as RGB; take its luminance
        rgb = np.asarray(pixels, dtype=np.float32)
        if rgb.ndim != 3:
            raise CorruptImageError("The colour DICOM image does not have three samples per pixel.")
        values = rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    if values.ndim != 2:
        raise UnsupportedImageError("The DICOM image is not a single two-dimensional picture.")
    unit = to_unit_range(values, stretch=True)
    if photometric == "MONOCHROME1":  # low values are bright: invert so that 1 = bright everywhere
        unit = np.ascontiguousarray(1.0 - unit, dtype=np.float32)
    facts = SourceFacts("DICOM", columns, rows, bits_stored, photometric, syntax_name)
    return XRay(unit, facts)
