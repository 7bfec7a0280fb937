"""Size bounds that keep a workstation responsive whatever file it is handed."""

from __future__ import annotations

from .errors import ImageTooLargeError, UnsupportedImageError

MAX_FILE_BYTES = 1 << 30  # 1 GiB: larger files are refused before being read
MAX_PIXELS = 10_000 * 10_000  # decompression-bomb bound (a 9000 px detector image still fits)
MIN_SIDE = 32  # anything smaller cannot be a diagnostic chest X-ray


def check_dimensions(width: int, height: int) -> None:
    """Refuse absurd image sizes before any pixel is decoded."""
    if width < MIN_SIDE or height < MIN_SIDE:
        raise UnsupportedImageError(
            f"The image is only {width}×{height} pixels; a chest X-ray needs at least {MIN_SIDE} pixels a side."
        )
    if width * height > MAX_PIXELS:
        raise ImageTooLargeError(
            f"The image is {width}×{height} pixels, more than the {MAX_PIXELS // 1_000_000} million pixels "
            "PneumoDesk accepts; it may be damaged or not an X-ray."
        )
