"""Safetensors without copies: read-only numpy views into received bytes, and a writer that fills one buffer.

Invariants: ``tensor_views`` accepts only a well-formed file (a JSON header whose tensors are known dtypes, whose
byte ranges match their shapes, are contiguous, in order and cover the data exactly — the same rules as the
safetensors library), so a view can never read outside the buffer; the views share memory with the input, which
must stay alive and unchanged while they are used. ``write_safetensors`` produces bytes the safetensors library
loads (header padded with spaces to a multiple of 8 bytes). Large buffers come from ``byte_buffer``: numpy memory,
which Linux backs with huge pages where allowed — a 44 MB update costs a few hundred page faults, not ten thousand.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable, Mapping

import numpy as np

from pneumodesk.federation.errors import WeightsIntegrityError
from pneumodesk.federation.tensors import safetensors_header

DTYPES: dict[str, np.dtype] = {
    "F64": np.dtype("<f8"), "F32": np.dtype("<f4"), "F16": np.dtype("<f2"), "I64": np.dtype("<i8"),
    "I32": np.dtype("<i4"), "I16": np.dtype("<i2"), "I8": np.dtype("i1"), "U8": np.dtype("u1"),
    "BOOL": np.dtype("?"),
}
CODES = {dtype: code for code, dtype in DTYPES.items()}


def byte_buffer(size: int) -> memoryview:
    """A writable, uninitialised buffer of ``size`` bytes (flat memoryview over numpy memory)."""
    return np.empty(size, dtype=np.uint8).data.cast("B")


def tensor_views(data: bytes | bytearray | memoryview) -> dict[str, np.ndarray]:
    """name → read-only array viewing ``data`` (no copy); raises ``WeightsIntegrityError`` on malformed input."""
    header = safetensors_header(memoryview(data))
    start = 8 + struct.unpack("<Q", bytes(data[:8]))[0]
    body = len(data) - start
    entries = []
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        try:
            dtype = DTYPES[entry["dtype"]]
            shape = tuple(int(n) for n in entry["shape"])
            begin, end = (int(n) for n in entry["data_offsets"])
        except (KeyError, TypeError, ValueError, OverflowError):  # OverflowError: int(Infinity)
            raise WeightsIntegrityError(f"The weights are not usable safetensors: tensor {name!r} is malformed "
                                        "or of an unsupported type.") from None
        if any(n < 0 for n in shape) or end - begin != int(np.prod(shape, dtype=np.int64)) * dtype.itemsize:
            raise WeightsIntegrityError(f"The weights are not safetensors: tensor {name!r} has the wrong size.")
        entries.append((begin, end, name, dtype, shape))
    entries.sort()
    position = 0
    for begin, end, name, _dtype, _shape in entries:
        if begin != position:
            raise WeightsIntegrityError(f"The weights are not safetensors: tensor {name!r} is not where it should be.")
        position = end
    if position != body:
        raise WeightsIntegrityError("The weights are not safetensors: the data length does not match the header.")
    views = {}
    for begin, end, name, dtype, shape in entries:
        array = np.frombuffer(data, dtype=dtype, count=(end - begin) // dtype.itemsize, offset=start + begin)
        array = array.reshape(shape)
        array.flags.writeable = False
        views[name] = array
    return views


def write_safetensors(layout: Mapping[str, tuple[np.dtype, tuple[int, ...]]],
                      fill: Callable[[str, np.ndarray], None], metadata: Mapping[str, str] | None = None
                      ) -> memoryview:
    """Safetensors bytes for tensors ``layout`` (name → dtype, shape); ``fill(name, out)`` writes each tensor's values
    into ``out``, a writable array inside the result — so the values are computed straight into the file's buffer.
    The result is read-only: it is stored, cached and served as it is."""
    names = sorted(layout)
    header: dict[str, object] = {}
    spans: dict[str, tuple[int, int]] = {}  # name → (begin, end) in the data section
    offset = 0
    for name in names:
        dtype, shape = np.dtype(layout[name][0]), layout[name][1]
        size = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        spans[name] = (offset, offset + size)
        header[name] = {"dtype": CODES[dtype], "shape": list(shape), "data_offsets": list(spans[name])}
        offset += size
    if metadata:
        header["__metadata__"] = dict(metadata)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-(8 + len(text)) % 8)
    start = 8 + len(text)
    out = byte_buffer(start + offset)
    out[:8] = struct.pack("<Q", len(text))
    out[8:start] = text
    for name in names:
        dtype, shape = np.dtype(layout[name][0]), layout[name][1]
        begin, end = spans[name]
        fill(name, np.frombuffer(out, dtype=dtype, count=(end - begin) // dtype.itemsize,
                                 offset=start + begin).reshape(shape))
    return out.toreadonly()
