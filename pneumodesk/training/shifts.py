"""Acquisition shifts: the changes that separate one X-ray collection from another, as image transforms.

Every transform takes and returns a grey image as float32 (height, width) in [0, 1] (the ``XRay.pixels``
convention, 1 = bright), never changes it in place, and is deterministic for a given ``numpy`` generator. The shift
suite (``benchmarks/shift_suite.py``) applies each named ``Shift`` at a fixed severity before preprocessing;
training may reuse the same transforms, at random severities, as augmentation (``random_shift``).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from scipy import ndimage

Transform = Callable[[np.ndarray, np.random.Generator], np.ndarray]


def _clip(pixels: np.ndarray) -> np.ndarray:
    return np.clip(pixels, 0.0, 1.0).astype(np.float32, copy=False)


def gamma(value: float) -> Transform:
    """Display gamma: < 1 brightens mid-tones, > 1 darkens them."""
    return lambda pixels, _rng: _clip(np.power(pixels, value))


def contrast(factor: float) -> Transform:
    """Stretch (> 1) or flatten (< 1) grey levels about the image's mean; clipped to [0, 1]."""
    return lambda pixels, _rng: _clip((pixels - pixels.mean()) * factor + pixels.mean())


def window(level: float, width: float) -> Transform:
    """A window/level rendering: [level − width/2, level + width/2] maps onto [0, 1], beyond it saturates."""
    return lambda pixels, _rng: _clip((pixels - (level - width / 2)) / width)


def brightness(offset: float) -> Transform:
    return lambda pixels, _rng: _clip(pixels + offset)


def blur(sigma_fraction: float) -> Transform:
    """Gaussian blur with sigma as a fraction of the image's shorter side (resolution independent)."""

    def apply(pixels: np.ndarray, _rng: np.random.Generator) -> np.ndarray:
        return _clip(ndimage.gaussian_filter(pixels, sigma_fraction * min(pixels.shape)))

    return apply


def sharpen(amount: float, sigma_fraction: float = 0.006) -> Transform:
    """Unsharp masking, as vendors' edge enhancement does."""

    def apply(pixels: np.ndarray, _rng: np.random.Generator) -> np.ndarray:
        smooth = ndimage.gaussian_filter(pixels, sigma_fraction * min(pixels.shape))
        return _clip(pixels + amount * (pixels - smooth))

    return apply


def noise(std: float) -> Transform:
    """Additive Gaussian noise (quantum/electronic noise of a low-dose or older detector)."""
    return lambda pixels, rng: _clip(pixels + rng.normal(0.0, std, pixels.shape).astype(np.float32))


def jpeg(quality: int) -> Transform:
    """An 8-bit JPEG round trip at ``quality`` (lossy export from a PACS or a screenshot)."""

    def apply(pixels: np.ndarray, _rng: np.random.Generator) -> np.ndarray:
        buffer = io.BytesIO()
        Image.fromarray(np.round(pixels * 255).astype(np.uint8), mode="L").save(buffer, "JPEG", quality=quality)
        return np.asarray(Image.open(io.BytesIO(buffer.getvalue())), dtype=np.float32) / 255.0

    return apply


def resample(short_side: int, method: Image.Resampling = Image.Resampling.BILINEAR) -> Transform:
    """Resample to ``short_side`` pixels on the shorter side (aspect kept): below the original loses detail, above it
    reproduces a full-resolution original that preprocessing has to shrink again."""

    def apply(pixels: np.ndarray, _rng: np.random.Generator) -> np.ndarray:
        height, width = pixels.shape
        scale = short_side / min(height, width)
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        image = Image.fromarray(np.ascontiguousarray(pixels), mode="F").resize(size, method)
        return _clip(np.asarray(image, dtype=np.float32))

    return apply


def lowres(short_side: int) -> Transform:
    """Down to ``short_side`` then back to the original size: detail lost, geometry kept."""

    def apply(pixels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        small = resample(short_side)(pixels, rng)
        image = Image.fromarray(small, mode="F").resize((pixels.shape[1], pixels.shape[0]), Image.Resampling.BICUBIC)
        return _clip(np.asarray(image, dtype=np.float32))

    return apply


def crop(fraction: float) -> Transform:
    """Keep the central part: ``fraction`` of each side is cut away (a tighter collimation or a zoomed export)."""

    def apply(pixels: np.ndarray, _rng: np.random.Generator) -> np.ndarray:
        height, width = pixels.shape
        dy, dx = round(height * fraction), round(width * fraction)
        return pixels[dy : height - dy or None, dx : width - dx or None].copy()

    return apply


def pad(fraction: float, value: float = 0.0) -> Transform:
    """A border of ``fraction`` of each side in grey ``value`` (black collimation, letterboxing, scanner margins)."""

    def apply(pixels: np.ndarray, _rng: np.random.Generator) -> np.ndarray:
        dy, dx = round(pixels.shape[0] * fraction), round(pixels.shape[1] * fraction)
        return np.pad(pixels, ((dy, dy), (dx, dx)), constant_values=value).astype(np.float32)

    return apply


def rotate(degrees: float) -> Transform:
    """A small in-plane rotation (patient positioning); corners filled black, size kept."""
    return lambda pixels, _rng: _clip(ndimage.rotate(pixels, degrees, reshape=False, order=1, mode="constant"))


def burned_in_text(value: float = 1.0) -> Transform:
    """Burned-in annotations: a laterality marker and text lines in the corners, as exported by many PACS."""

    def apply(pixels: np.ndarray, _rng: np.random.Generator) -> np.ndarray:
        height, width = pixels.shape
        image = Image.fromarray(np.round(pixels * 255).astype(np.uint8), mode="L")
        draw = ImageDraw.Draw(image)
        size = max(8, round(min(height, width) * 0.06))
        font = ImageFont.load_default(size=size)
        ink = round(value * 255)
        margin = round(min(height, width) * 0.03)
        draw.text((margin, margin), "R", fill=ink, font=ImageFont.load_default(size=size * 2))
        draw.text((width - margin - size * 6, margin), "AP PORTABLE", fill=ink, font=font)
        draw.text((margin, height - margin - size * 2), "2026-12-04 08:15", fill=ink, font=font)
        draw.text((width - margin - size * 5, height - margin - size * 2), "kVp 90", fill=ink, font=font)
        box = round(min(height, width) * 0.04)
        draw.rectangle((width // 2 - box, margin, width // 2 + box, margin + box), outline=ink, width=max(1, box // 6))
        return np.asarray(image, dtype=np.float32) / 255.0

    return apply


def invert() -> Transform:
    """A MONOCHROME1 image shown without its inversion: bone dark, air bright."""
    return lambda pixels, _rng: (1.0 - pixels).astype(np.float32)


@dataclass(frozen=True)
class Shift:
    """One named condition of the shift suite: a family (what changes) at one fixed severity."""

    name: str
    family: str
    transform: Transform

    def __call__(self, pixels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return self.transform(pixels, rng)


SHIFT_SUITE: tuple[Shift, ...] = (
    Shift("gamma 0.6", "contrast and gamma", gamma(0.6)),
    Shift("gamma 1.7", "contrast and gamma", gamma(1.7)),
    Shift("contrast ×0.6", "contrast and gamma", contrast(0.6)),
    Shift("contrast ×1.5", "contrast and gamma", contrast(1.5)),
    Shift("window 0.35/0.6", "window/level", window(0.35, 0.6)),
    Shift("window 0.65/0.6", "window/level", window(0.65, 0.6)),
    Shift("brightness +0.15", "brightness", brightness(0.15)),
    Shift("brightness −0.15", "brightness", brightness(-0.15)),
    Shift("blur σ 1 %", "blur", blur(0.01)),
    Shift("sharpen ×1.5", "sharpening", sharpen(1.5)),
    Shift("noise σ 0.04", "noise", noise(0.04)),
    Shift("JPEG q 15", "JPEG quality", jpeg(15)),
    Shift("low resolution 64 px", "resolution", lowres(64)),
    Shift("full size 1024 px bicubic", "resolution", resample(1024, Image.Resampling.BICUBIC)),
    Shift("crop 10 %", "crop/border/padding", crop(0.10)),
    Shift("black border 12 %", "crop/border/padding", pad(0.12, 0.0)),
    Shift("white border 8 %", "crop/border/padding", pad(0.08, 1.0)),
    Shift("rotate +8°", "rotation", rotate(8.0)),
    Shift("rotate −8°", "rotation", rotate(-8.0)),
    Shift("burned-in text", "text and markers", burned_in_text()),
    Shift("inverted (MONOCHROME1 shown raw)", "inversion", invert()),
)


def shift_by_name(name: str) -> Shift:
    for shift in SHIFT_SUITE:
        if shift.name == name:
            return shift
    raise KeyError(f"Unknown shift {name!r}; known: {', '.join(shift.name for shift in SHIFT_SUITE)}")


def random_shift(pixels: np.ndarray, rng: np.random.Generator, *, include_inversion: bool = False) -> np.ndarray:
    """One shift family drawn at random, at a random severity around the suite's (for augmentation)."""
    u = rng.uniform
    choices: list[Transform] = [
        gamma(float(np.exp(u(-0.6, 0.6)))),
        contrast(u(0.6, 1.5)),
        window(u(0.35, 0.65), u(0.6, 1.0)),
        brightness(u(-0.15, 0.15)),
        blur(u(0.002, 0.01)),
        sharpen(u(0.3, 1.5)),
        noise(u(0.005, 0.04)),
        jpeg(int(rng.integers(15, 90))),
        lowres(int(rng.integers(56, 160))),
        crop(u(0.0, 0.1)),
        pad(u(0.0, 0.12), float(rng.choice([0.0, 1.0]))),
        rotate(u(-8.0, 8.0)),
        burned_in_text(u(0.7, 1.0)),
    ]
    if include_inversion:
        choices.append(invert())
    return choices[int(rng.integers(len(choices)))](pixels, rng)


def shift_standardised(
    inputs: np.ndarray, rng: np.random.Generator, probability: float = 0.5, *, include_inversion: bool = False
) -> np.ndarray:
    """Augment already preprocessed inputs (n, 1, S, S): each image, with ``probability``, is min-max mapped to
    [0, 1], shifted by ``random_shift``, resized back to S×S and re-standardised (zero mean, unit std), as
    ``preprocess`` would have done to the shifted original. Returns float32; ``inputs`` is left unchanged."""
    out = np.asarray(inputs, dtype=np.float32).copy()
    size = out.shape[-1]
    for index in np.flatnonzero(rng.random(len(out)) < probability):
        image = out[index, 0]
        low, high = float(image.min()), float(image.max())
        shifted = random_shift((image - low) / max(high - low, 1e-6), rng, include_inversion=include_inversion)
        if shifted.shape != (size, size):
            shifted = np.asarray(
                Image.fromarray(np.ascontiguousarray(shifted), mode="F").resize((size, size), Image.Resampling.BILINEAR)
            )
        out[index, 0] = (shifted - shifted.mean()) / max(float(shifted.std()), 1e-3)
    return out


def shift_preprocessed(inputs: np.ndarray, shift: Shift, seed: int = 0) -> np.ndarray:
    """``shift`` applied to every already preprocessed input (n, 1, S, S), each min-max mapped to [0, 1] first and
    re-standardised after (as ``preprocess`` does); image ``i`` draws its random numbers from ``seed + i``."""
    out = np.empty(inputs.shape, dtype=np.float32)
    size = inputs.shape[-1]
    for index, image in enumerate(np.asarray(inputs, dtype=np.float32)[:, 0]):
        low, high = float(image.min()), float(image.max())
        shifted = shift((image - low) / max(high - low, 1e-6), np.random.default_rng(seed + index))
        if shifted.shape != (size, size):
            shifted = np.asarray(
                Image.fromarray(np.ascontiguousarray(shifted), mode="F").resize((size, size), Image.Resampling.BILINEAR)
            )
        out[index, 0] = (shifted - shifted.mean()) / max(float(shifted.std()), 1e-3)
    return out
