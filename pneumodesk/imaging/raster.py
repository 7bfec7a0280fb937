"""PNG and JPEG (and other Pillow formats) into an XRay: 8/16-bit, grey or colour, EXIF orientation applied."""

from __future__ import annotations

import logging
import struct
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import CorruptImageError, ImageTooLargeError, UnsupportedImageError
from .intended_use import check_grey_content
from .limits import MAX_PIXELS, check_dimensions
from .normalise import to_unit_range
from .xray import SourceFacts, XRay

log = logging.getLogger(__name__)

# What Pillow raises on damaged files; TypeError/KeyError from a TIFF whose later IFD lacks its size (found by
# tests/unit/test_imaging_fuzz.py, tests/corpus/images/tiff-second-ifd-without-size.tif), the rest from its plugins.
_DAMAGED_IMAGE_ERRORS = (OSError, SyntaxError, ValueError, TypeError, KeyError, IndexError, EOFError, struct.error)
_SIXTEEN_BIT_MODES = {"I;16", "I;16L", "I;16B", "I;16N"}


def read_raster(path: Path) -> XRay:
    with warnings.catch_warnings():
        # Pillow's own bomb check warns (then raises) at its global limit; ours is checked first, below.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            with Image.open(path) as image:
                check_dimensions(*image.size)
                if getattr(image, "n_frames", 1) > 1:
                    raise UnsupportedImageError(
                        "The file holds several images (frames); open a single X-ray image instead."
                    )
                image_format = image.format or path.suffix.lstrip(".").upper()
                image.load()
                upright = ImageOps.exif_transpose(image)
                pixels, bit_depth, photometric = _grey_pixels(upright)
                colour_sample = _colour_sample(upright) if photometric in ("RGB", "PALETTE") else None
        except UnidentifiedImageError:
            raise UnsupportedImageError(
                "The file is not an image PneumoDesk can read (expected DICOM, PNG or JPEG)."
            ) from None
        except Image.DecompressionBombError:
            raise ImageTooLargeError(
                f"The image claims more than {MAX_PIXELS // 1_000_000} million pixels; it may be a decompression bomb."
            ) from None
        except _DAMAGED_IMAGE_ERRORS as error:
            log.info("Image decoding failed: %r", error)
            raise CorruptImageError("The image data is damaged or incomplete.") from None
    if colour_sample is not None:
        check_grey_content(colour_sample)
    height, width = pixels.shape
    facts = SourceFacts(image_format, width, height, bit_depth, photometric)
    return XRay(to_unit_range(pixels), facts)


def _colour_sample(image: Image.Image, side: int = 256) -> np.ndarray:
    """The image as RGB, reduced to about ``side`` pixels on its longer side (cheap: Pillow's box reduction)."""
    rgb = image.convert("RGB")
    factor = max(1, max(rgb.size) // side)
    return np.asarray(rgb.reduce(factor) if factor > 1 else rgb)


def _grey_pixels(image: Image.Image) -> tuple[np.ndarray, int, str]:
    """Return (float32 grey pixels scaled to [0, 1] by bit depth, bit depth, photometric name)."""
    mode = image.mode
    if mode in _SIXTEEN_BIT_MODES:
        return np.asarray(image, dtype=np.float32) / 65535.0, 16, "MONOCHROME2"
    if mode == "I":  # 16-bit PNGs may open as 32-bit integer images
        values = np.asarray(image, dtype=np.float64)
        if values.min(initial=0) >= 0 and values.max(initial=0) <= 65535:
            return (values / 65535.0).astype(np.float32), 16, "MONOCHROME2"
        return values.astype(np.float32), 32, "MONOCHROME2"  # to_unit_range stretches it
    if mode == "F":
        return np.asarray(image, dtype=np.float32), 32, "MONOCHROME2"
    if mode in ("L", "1"):
        return np.asarray(image.convert("L"), dtype=np.float32) / 255.0, 8, "MONOCHROME2"
    if mode == "LA":
        return np.asarray(image.getchannel("L"), dtype=np.float32) / 255.0, 8, "MONOCHROME2"
    # RGB, RGBA, P, CMYK, YCbCr, ...: luminance as ITU-R 601, which is what grey content in colour files carries
    return np.asarray(image.convert("L"), dtype=np.float32) / 255.0, 8, "RGB" if mode != "P" else "PALETTE"
