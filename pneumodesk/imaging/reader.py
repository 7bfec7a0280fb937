"""``read_xray``: any supported file on disk into an XRay, or a typed error saying why not."""

from __future__ import annotations

import os
from pathlib import Path

from .dicom import read_dicom
from .errors import EmptyFileError, ImageTooLargeError, UnreadableFileError
from .limits import MAX_FILE_BYTES
from .raster import read_raster
from .xray import XRay

DICOM_SUFFIXES = {".dcm", ".dicom", ".dic"}
RASTER_SUFFIXES = {".png", ".jpg", ".jpeg", ".jpe", ".tif", ".tiff", ".bmp"}
SUPPORTED_SUFFIXES = DICOM_SUFFIXES | RASTER_SUFFIXES


def read_xray(path: str | os.PathLike[str]) -> XRay:
    """Read a DICOM, PNG or JPEG chest X-ray. Raises an ``XRayReadError`` subclass with a plain message."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if not path.is_file():
            raise UnreadableFileError(f"{path.name or path} is not a file.")
        with path.open("rb") as handle:
            head = handle.read(132)
    except FileNotFoundError:
        raise UnreadableFileError("The file does not exist (it may have been moved or deleted).") from None
    except PermissionError:
        raise UnreadableFileError("PneumoDesk is not allowed to read this file (permission denied).") from None
    except IsADirectoryError:
        raise UnreadableFileError("This is a folder, not a file.") from None
    except OSError as error:
        raise UnreadableFileError(f"The file could not be read ({error.strerror or error}).") from None
    if size == 0:
        raise EmptyFileError("The file is empty (0 bytes).")
    if size > MAX_FILE_BYTES:
        raise ImageTooLargeError(f"The file is {size / 2**30:.1f} GiB, larger than the 1 GiB PneumoDesk accepts.")
    if head[128:132] == b"DICM":
        return read_dicom(path)
    if path.suffix.lower() in DICOM_SUFFIXES:  # DICOM without the 128-byte preamble
        return read_dicom(path, force=True)
    return read_raster(path)


def is_supported_file(path: Path) -> bool:
    """Whether a folder scan should pick this file up: a known extension, or DICOM's magic bytes (no extension)."""
    if path.name.startswith("."):
        return False
    if path.suffix.lower() in SUPPORTED_SUFFIXES:
        return True
    if path.suffix:
        return False
    try:
        with path.open("rb") as handle:
            return handle.read(132)[128:132] == b"DICM"
    except OSError:
        return False
