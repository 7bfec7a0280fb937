"""Reading chest X-rays (PNG, JPEG, DICOM) into one ``XRay`` type, and the one preprocessing function."""

from .errors import (
    CorruptImageError,
    EmptyFileError,
    ImageTooLargeError,
    OutsideIntendedUseError,
    UnreadableFileError,
    UnsupportedImageError,
    XRayReadError,
)
from .preprocess import CANONICAL_SIZE, PREPROCESSING_VERSION, preprocess
from .reader import SUPPORTED_SUFFIXES, is_supported_file, read_xray
from .xray import SourceFacts, XRay

__all__ = [
    "CANONICAL_SIZE",
    "PREPROCESSING_VERSION",
    "SUPPORTED_SUFFIXES",
    "CorruptImageError",
    "EmptyFileError",
    "ImageTooLargeError",
    "OutsideIntendedUseError",
    "SourceFacts",
    "UnreadableFileError",
    "UnsupportedImageError",
    "XRay",
    "XRayReadError",
    "is_supported_file",
    "preprocess",
    "read_xray",
]
