"""Images that are not chest X-rays, made by nobody here: scikit-image's bundled sample images and the pixel data of
pydicom's own test files (CT, MR, US, NM, RT dose, secondary captures...), written as PNG files as a user exporting
them would (a PNG carries no modality, so only the model's features can tell).

Skips what is not bundled offline (scikit-image fetches some samples on demand; pydicom-data may be absent).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image


@dataclass(frozen=True)
class OtherImage:
    source: str  # "scikit-image" or "pydicom"
    name: str  # sample name, or test file name with its modality
    path: Path  # the PNG written under the work folder


def _to_png(pixels: np.ndarray, target: Path) -> bool:
    array = np.asarray(pixels)
    if array.ndim == 3 and array.shape[-1] not in (3, 4):
        array = array[array.shape[0] // 2]  # a volume or multi-frame: its middle slice
    if array.ndim == 4:
        array = array[array.shape[0] // 2]
    if array.ndim not in (2, 3) or min(array.shape[:2]) < 16:
        return False
    values = array.astype(np.float64)
    low, high = np.nanpercentile(values, 0.5), np.nanpercentile(values, 99.5)
    if not high > low:
        return False
    scaled = np.clip((values - low) / (high - low), 0, 1)
    mode = "L" if scaled.ndim == 2 else ("RGBA" if scaled.shape[-1] == 4 else "RGB")
    Image.fromarray(np.round(scaled * 255).astype(np.uint8), mode=mode).save(target)
    return True


def scikit_image_samples(folder: Path) -> list[OtherImage]:
    import skimage.data

    found = []
    skip = {"data_dir", "download_all", "file_hash", "lbp_frontal_face_cascade_filename", "lfw_subset",
            "stereo_motorcycle", "binary_blobs", "cells3d", "brain", "kidney", "human_mitosis", "vortex"}
    for name in sorted(set(skimage.data.__all__) - skip):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                pixels = getattr(skimage.data, name)()
        except Exception:  # not bundled: scikit-image would download it
            continue
        target = folder / f"skimage-{name}.png"
        if _to_png(pixels, target):
            found.append(OtherImage("scikit-image", name, target))
    return found


def pydicom_test_images(folder: Path) -> list[OtherImage]:
    import pydicom
    from pydicom.data import get_testdata_files

    found = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        paths = sorted(set(get_testdata_files("*.dcm")))
        for path in paths:
            try:
                dataset = pydicom.dcmread(path)
                pixels = dataset.pixel_array
            except Exception:  # no pixel data, or a transfer syntax without a decoder here
                continue
            modality = str(getattr(dataset, "Modality", "") or "no modality")
            if modality in ("CR", "DX"):
                continue  # a radiograph is not an "other image"
            target = folder / f"pydicom-{Path(path).stem}.png"
            if _to_png(pixels, target):
                found.append(OtherImage("pydicom", f"{Path(path).name} ({modality})", target))
    return found
