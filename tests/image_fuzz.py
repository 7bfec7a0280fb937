"""Fuzzing the X-ray readers: seed files, Hypothesis strategies that mutate their bytes, and the property every
input must meet. Shared by tests/unit/test_imaging_fuzz.py (bounded, fixed seed), the corpus replay test and
benchmarks/fuzz_readers.py (the long run).

The property (``check_reader``): ``read_xray`` either returns a well-formed XRay or raises an ``XRayReadError``
subclass whose message is one plain sentence; no other exception, no input slower than the time limit.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import signal
import struct
import threading
import time
import warnings
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import strategies as st
from PIL import Image

from pneumodesk.imaging import XRayReadError, read_xray
from pneumodesk.imaging.limits import MAX_PIXELS, MIN_SIDE

PER_INPUT_SECONDS = 5.0
PLAIN_MESSAGE = re.compile(r"[A-Z][\x20-\x7e\u00a0-\u2fff]{10,300}[.)]")
CORPUS = Path(__file__).parent / "corpus" / "images"


def pydicom_test_files() -> Path:
    """The folder of test files shipped inside the installed pydicom (no download: the package's own data)."""
    import pydicom.data

    return Path(pydicom.data.__file__).parent / "test_files"


@dataclass(frozen=True)
class Seed:
    name: str
    data: bytes
    suffix: str


def pydicom_seeds(max_bytes: int = 60_000) -> list[Seed]:
    """Every DICOM-looking file in pydicom's test folder up to ``max_bytes`` (the big ones only slow mutation)."""
    seeds = []
    for path in sorted(pydicom_test_files().rglob("*")):
        if not path.is_file() or path.suffix in {".txt", ".json", ".dump", ".gz", ".icc"} or path.name == "README":
            continue
        data = path.read_bytes()
        if len(data) <= max_bytes:
            seeds.append(Seed(f"pydicom:{path.name}", data, ".dcm"))
            as_chest = as_chest_radiograph(data)
            if as_chest != data:
                seeds.append(Seed(f"pydicom:{path.name}+CR", as_chest, ".dcm"))
    return seeds


def as_chest_radiograph(data: bytes) -> bytes:
    """The file with its little-endian Modality rewritten to CR and its body part blanked, so that mutations of a CT
    or MR also reach the pixel decoders instead of stopping at the intended-use check."""
    edited = bytearray(data)
    for tag, value in ((b"\x08\x00\x60\x00", b"CR"), (b"\x18\x00\x15\x00", None)):
        for match in re.finditer(re.escape(tag), data):
            start = match.start()
            explicit = data[start + 4 : start + 6] == b"CS"
            length = int.from_bytes(data[start + 6 : start + 8] if explicit else data[start + 4 : start + 8], "little")
            if length <= 16 and (value is None or length == len(value)):
                edited[start + 8 : start + 8 + length] = value or b" " * length
    return bytes(edited)


def raster_seeds() -> list[Seed]:
    """Small PNG, JPEG, TIFF and BMP files in the modes hospitals export, made here."""
    rng = np.random.default_rng(0)
    grey = (np.linspace(0, 255, 48 * 40).reshape(48, 40) + rng.normal(0, 9, (48, 40))).clip(0, 255)
    grey8 = grey.astype(np.uint8)
    made: list[tuple[str, str, Image.Image, dict[str, object]]] = [
        ("grey8.png", "PNG", Image.fromarray(grey8, "L"), {}),
        ("grey16.png", "PNG", Image.fromarray((grey * 257).astype(np.uint16)), {}),
        ("rgb.png", "PNG", Image.fromarray(np.stack([grey8] * 3, axis=2), "RGB"), {}),
        ("palette.png", "PNG", Image.fromarray(grey8, "L").convert("P"), {}),
        ("grey.jpg", "JPEG", Image.fromarray(grey8, "L"), {"quality": 80}),
        ("progressive.jpg", "JPEG", Image.fromarray(np.stack([grey8] * 3, axis=2), "RGB"), {"progressive": True}),
        ("grey.tif", "TIFF", Image.fromarray(grey8, "L"), {}),
        ("lzw16.tif", "TIFF", Image.fromarray((grey * 257).astype(np.uint16)), {"compression": "tiff_lzw"}),
        ("grey.bmp", "BMP", Image.fromarray(grey8, "L"), {}),
    ]
    seeds = []
    for name, image_format, image, options in made:
        buffer = io.BytesIO()
        image.save(buffer, format=image_format, **options)
        seeds.append(Seed(f"made:{name}", buffer.getvalue(), Path(name).suffix))
    return seeds


def chest_dicom_seed() -> Seed:
    """A small, valid CR chest DICOM (uncompressed), so mutations also reach the decode path."""
    from tests.builders import chest_like, dicom_dataset, to_uint16

    dataset = dicom_dataset(to_uint16(chest_like(48, 40)) >> 4)
    dataset.Modality = "CR"
    dataset.BodyPartExamined = "CHEST"
    buffer = io.BytesIO()
    dataset.save_as(buffer, enforce_file_format=True)
    return Seed("made:chest_cr.dcm", buffer.getvalue(), ".dcm")


# --- mutations: each takes the bytes and a draw function and returns new bytes ---

Draw = Callable[[st.SearchStrategy[Any]], Any]
HUGE = st.sampled_from([0, 1, MIN_SIDE - 1, MIN_SIDE, 0x7FFF, 0xFFFF, 0x10000, 0x7FFFFFFF, 0xFFFFFFFF]) | st.integers(
    0, 2**32 - 1
)
_POSITION = st.integers(0, 2**20)


def _at(draw: Draw, data: bytearray) -> int:
    return int(draw(_POSITION)) % (len(data) + 1)


def flip_bits(draw: Draw, data: bytearray, _seeds: list[Seed]) -> bytearray:
    if data:
        where = _at(draw, data) % len(data)
        data[where] ^= int(draw(st.integers(1, 255)))
    return data


def overwrite(draw: Draw, data: bytearray, _seeds: list[Seed]) -> bytearray:
    where = _at(draw, data)
    chunk = bytes(draw(st.binary(min_size=1, max_size=8)))
    data[where : where + len(chunk)] = chunk
    return data


def truncate(draw: Draw, data: bytearray, _seeds: list[Seed]) -> bytearray:
    return data[: _at(draw, data)]


def insert(draw: Draw, data: bytearray, _seeds: list[Seed]) -> bytearray:
    where = _at(draw, data)
    filler = st.binary(min_size=1, max_size=64) | st.sampled_from([b"\xff" * 16, b"\x00" * 256, b"\xff\xd8\xff"])
    data[where:where] = bytes(draw(filler))
    return data


def delete(draw: Draw, data: bytearray, _seeds: list[Seed]) -> bytearray:
    where = _at(draw, data)
    del data[where : where + int(draw(st.integers(1, 512)))]
    return data


def splice(draw: Draw, data: bytearray, seeds: list[Seed]) -> bytearray:
    other = bytearray(draw(st.sampled_from(seeds)).data)
    start = _at(draw, other)
    piece = other[start : start + int(draw(st.integers(1, 4096)))]
    where = _at(draw, data)
    return data[:where] + piece + data[where + int(draw(st.integers(0, 4096))) :]


_DICOM_SIZE_TAGS = [(0x0028, element) for element in (0x0002, 0x0008, 0x0010, 0x0011, 0x0100, 0x0101, 0x0103)]


def huge_dimensions(draw: Draw, data: bytearray, _seeds: list[Seed]) -> bytearray:
    """Write absurd values where headers keep an image's size: DICOM Rows/Columns/Frames/bits, PNG IHDR, JPEG SOF,
    JPEG 2000 SIZ, TIFF ImageWidth/ImageLength."""
    value = int(draw(HUGE))
    spots: list[tuple[int, str]] = []  # (offset, struct format of the field)
    for group, element in _DICOM_SIZE_TAGS:
        for tag, order in ((struct.pack("<HH", group, element), "<"), (struct.pack(">HH", group, element), ">")):
            spots += [(match.start() + 8, order + "H") for match in re.finditer(re.escape(tag), data)]
    if data[12:16] == b"IHDR":
        spots += [(16, ">I"), (20, ">I")]
    for marker in (b"\xff\xc0", b"\xff\xc1", b"\xff\xc2", b"\xff\xf7"):  # JPEG and JPEG-LS start of frame
        spots += [(m.start() + 5, ">H") for m in re.finditer(re.escape(marker), data)]
        spots += [(m.start() + 7, ">H") for m in re.finditer(re.escape(marker), data)]
    for match in re.finditer(re.escape(b"\xff\x51"), data):  # JPEG 2000 SIZ: Xsiz, Ysiz
        spots += [(match.start() + 6, ">I"), (match.start() + 10, ">I")]
    for tag in (b"\x00\x01", b"\x01\x01"):  # TIFF ImageWidth / ImageLength entries (little endian)
        spots += [(m.start() + 8, "<I") for m in re.finditer(re.escape(tag + b"\x04\x00\x01\x00\x00\x00"), data)]
        spots += [(m.start() + 8, "<H") for m in re.finditer(re.escape(tag + b"\x03\x00\x01\x00\x00\x00"), data)]
    spots = [(offset, form) for offset, form in spots if offset + struct.calcsize(form) <= len(data)]
    if not spots:
        return data
    offset, form = spots[int(draw(st.integers(0, len(spots) - 1)))]
    data[offset : offset + struct.calcsize(form)] = struct.pack(form, value % (1 << (8 * struct.calcsize(form))))
    if data[12:16] == b"IHDR" and offset in (16, 20):  # keep the chunk's CRC right so the size itself is tested
        data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return data


MUTATIONS = (flip_bits, overwrite, truncate, insert, delete, splice, huge_dimensions, huge_dimensions)


@dataclass(frozen=True)
class FuzzInput:
    seed: str
    data: bytes
    suffix: str
    steps: tuple[str, ...]


def holds_pixels(seed: Seed) -> bool:
    """Whether a DICOM seed has a PixelData element (little or big endian); raster seeds always do."""
    return seed.suffix != ".dcm" or b"\xe0\x7f\x10\x00" in seed.data or b"\x7f\xe0\x00\x10" in seed.data


@st.composite
def mutated_inputs(draw: Draw, seeds: list[Seed], max_steps: int = 4) -> FuzzInput:
    """A seed (mostly ones with pixels: pydicom's folder is largely reports, plans and directories stripped of their
    pixels), then up to ``max_steps`` mutations, then a file suffix (usually the seed's own)."""
    pool = [seed for seed in seeds if holds_pixels(seed)] + [seed for seed in seeds if not holds_pixels(seed)][::8]
    seed = draw(st.sampled_from(pool))
    assert isinstance(seed, Seed)
    data = bytearray(seed.data)
    steps = []
    for _ in range(int(draw(st.integers(0, max_steps)))):
        mutation = draw(st.sampled_from(MUTATIONS))
        data = mutation(draw, data, seeds)
        steps.append(mutation.__name__)
    suffix = str(draw(st.sampled_from([seed.suffix] * 4 + [".dcm", ".png", ".jpg", ".tif", ""])))
    return FuzzInput(seed.name, bytes(data), suffix, tuple(steps))


# --- the property ---


class ReaderTimeout(BaseException):  # a BaseException, so that no reader's `except` swallows it
    """The reader ran past the per-input time limit."""


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Interrupt the block after ``seconds`` (main thread only; elsewhere the elapsed time is still checked)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(_signum: int, _frame: object) -> None:
        raise ReaderTimeout(f"reader ran past {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@dataclass(frozen=True)
class Outcome:
    kind: str  # "decoded" or the XRayReadError subclass name
    message: str
    seconds: float


class ReaderDefect(AssertionError):
    """An input broke the property: an untyped exception, an unplain message, a malformed XRay or a hang."""


def check_reader(path: Path, seconds: float = PER_INPUT_SECONDS) -> Outcome:
    """Read ``path`` and hold the property; raise ``ReaderDefect`` (with the cause chained) when it fails."""
    started = time.perf_counter()
    try:
        with time_limit(seconds), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # library warnings go to the app's log; not part of the property
            xray = read_xray(path)
    except XRayReadError as error:
        message = str(error)
        if not PLAIN_MESSAGE.fullmatch(message):
            raise ReaderDefect(f"{type(error).__name__} with a message that is not plain: {message!r}") from error
        outcome = Outcome(type(error).__name__, message, time.perf_counter() - started)
    except ReaderTimeout as error:
        raise ReaderDefect(f"no answer within {seconds} s") from error
    except Exception as error:
        raise ReaderDefect(f"untyped {type(error).__name__}: {error}") from error
    else:
        pixels = xray.pixels
        height, width = pixels.shape
        if min(height, width) < MIN_SIDE or height * width > MAX_PIXELS:
            raise ReaderDefect(f"decoded an image of {width}×{height} pixels, outside the limits")
        if not (np.isfinite(pixels).all() and pixels.min() >= 0.0 and pixels.max() <= 1.0):
            raise ReaderDefect("decoded pixels outside [0, 1]")
        outcome = Outcome("decoded", "", time.perf_counter() - started)
    if outcome.seconds > seconds:
        raise ReaderDefect(f"took {outcome.seconds:.1f} s, more than {seconds} s")
    return outcome


def check_bytes(fuzz_input: FuzzInput, folder: Path, seconds: float = PER_INPUT_SECONDS) -> Outcome:
    """``check_reader`` on the input written to a file. With $PNEUMODESK_FUZZ_SAVE set, a failing input is also
    copied into that folder (named by its digest), ready to be minimised into the corpus."""
    path = folder / f"input{fuzz_input.suffix}"
    path.write_bytes(fuzz_input.data)
    try:
        return check_reader(path, seconds)
    except ReaderDefect:
        if os.environ.get("PNEUMODESK_FUZZ_SAVE"):
            target = Path(os.environ["PNEUMODESK_FUZZ_SAVE"])
            target.mkdir(parents=True, exist_ok=True)
            digest = hashlib.sha256(fuzz_input.data).hexdigest()[:16]
            (target / f"{digest}{fuzz_input.suffix or '.bin'}").write_bytes(fuzz_input.data)
        raise
