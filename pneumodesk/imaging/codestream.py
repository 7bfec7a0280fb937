"""The size a compressed DICOM frame claims in its own codestream, checked against the DICOM header before decoding.

A JPEG, JPEG-LS or JPEG 2000 decoder allocates what the codestream's frame header says, not what Rows and Columns
say. A damaged or hostile frame header (height 0, meaning "given later", or 65535×65535) made the JPEG-LS decoder
spin while its memory grew without bound (tests/corpus/images/jpegls-height-zero.dcm). So the frame header is read
here, by hand, and must agree with the DICOM header that ``check_dimensions`` already bounded.
"""

from __future__ import annotations

import struct

from .errors import CorruptImageError

_JPEG_START_OF_FRAME = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF, 0xF7}
_J2K_SIZ = b"\xff\x4f\xff\x51"


def claimed_size(codestream: bytes) -> tuple[int, int] | None:
    """(width, height) from a JPEG/JPEG-LS frame header or a JPEG 2000 SIZ segment; None for other codestreams
    (e.g. RLE, whose decoder sizes its output from Rows and Columns). Raises CorruptImageError when a JPEG stream's
    segments end before its frame header."""
    if codestream.startswith(b"\xff\xd8"):
        return _jpeg_size(codestream)
    start = codestream.find(_J2K_SIZ, 0, 4096)  # a raw codestream, or one inside a JP2 box wrapper
    if start >= 0:
        try:
            x_size, y_size, x_origin, y_origin = struct.unpack_from(">IIII", codestream, start + 8)
        except struct.error:
            raise CorruptImageError("The compressed image's header is cut short.") from None
        return x_size - x_origin, y_size - y_origin
    return None


def check_claimed_size(codestream: bytes, columns: int, rows: int) -> None:
    size = claimed_size(codestream)
    if size is not None and size != (columns, rows):
        raise CorruptImageError(
            f"The compressed image says it is {size[0]}×{size[1]} pixels but the DICOM header says "
            f"{columns}×{rows}; the file is damaged."
        )


def _jpeg_size(stream: bytes) -> tuple[int, int]:
    position = 2
    while position + 4 <= len(stream):
        if stream[position] != 0xFF:
            break
        marker = stream[position + 1]
        if marker == 0xFF:  # fill byte
            position += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD8)):  # stand-alone markers carry no length
            position += 2
            continue
        (length,) = struct.unpack_from(">H", stream, position + 2)
        if marker in _JPEG_START_OF_FRAME:
            if position + 9 > len(stream):
                break
            height, width = struct.unpack_from(">HH", stream, position + 5)
            return width, height
        if marker == 0xDA or length < 2:  # start of scan before any frame header, or a broken length
            break
        position += 2 + length
    raise CorruptImageError("The compressed image has no readable frame header; the file is damaged.")
