"""Typed errors for X-ray files a user can hand us. Each message is meant to be shown as is."""

from __future__ import annotations

from pneumodesk.errors import PneumoDeskError


class XRayReadError(PneumoDeskError):
    """An image file could not be turned into an X-ray. ``str(error)`` is a plain-language reason."""


class UnreadableFileError(XRayReadError):
    """The path does not exist, is not a file, or cannot be opened."""


class EmptyFileError(XRayReadError):
    """The file has no bytes, or the image in it has no contrast at all."""


class CorruptImageError(XRayReadError):
    """The file claims to be an image but its data is damaged or truncated."""


class UnsupportedImageError(XRayReadError):
    """The file is readable but is not a single-frame image PneumoDesk can use."""


class ImageTooLargeError(XRayReadError):
    """The image (or file) exceeds the size limits that keep a workstation responsive."""


class OutsideIntendedUseError(XRayReadError):
    """The file is readable but says it is not a chest radiograph (e.g. a CT, an MR, a knee): no probability."""
