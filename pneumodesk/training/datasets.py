"""Labelled X-ray collections: a folder with NORMAL/ and PNEUMONIA/ subfolders, or the PneumoniaMNIST npz layout."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pneumodesk.errors import PneumoDeskError
from pneumodesk.imaging import SourceFacts, XRay, XRayReadError, is_supported_file, preprocess, read_xray
from pneumodesk.imaging.patient_groups import patient_group  # one definition, shared with dataset registration

CLASS_NAMES = ("NORMAL", "PNEUMONIA")  # label 0, label 1


class TrainingDataError(PneumoDeskError):
    """The dataset location or layout is unusable; ``str(error)`` says why in plain words."""


@dataclass(frozen=True)
class LabelledImage:
    path: Path
    label: int
    group: str  # patient or study id: images of one group never straddle a split


@dataclass
class FolderDataset:
    root: Path
    images: list[LabelledImage]
    unreadable: list[tuple[Path, str]] = field(default_factory=list)

    @property
    def labels(self) -> np.ndarray:
        return np.array([image.label for image in self.images], dtype=np.int64)


def scan_folder(root: str | os.PathLike[str]) -> FolderDataset:
    """Index ``root/NORMAL`` and ``root/PNEUMONIA`` (recursively). Byte-identical files share a group."""
    root = Path(root)
    if not root.is_dir():
        raise TrainingDataError(f"The dataset folder {root} does not exist.")
    missing = [name for name in CLASS_NAMES if not (root / name).is_dir()]
    if missing:
        raise TrainingDataError(
            f"The dataset folder needs NORMAL/ and PNEUMONIA/ subfolders; missing: {', '.join(missing)}."
        )
    images: list[LabelledImage] = []
    for label, name in enumerate(CLASS_NAMES):
        for path in sorted((root / name).rglob("*")):
            if path.is_file() and is_supported_file(path):
                images.append(LabelledImage(path, label, patient_group(path.name)))
    if not images:
        raise TrainingDataError(f"No images were found under {root}/NORMAL or {root}/PNEUMONIA.")
    return FolderDataset(root, _merge_identical_files(images))


def _merge_identical_files(images: list[LabelledImage]) -> list[LabelledImage]:
    """Give byte-identical files one group, so a duplicate never lands on both sides of a split."""
    parent: dict[str, str] = {}

    def find(group: str) -> str:
        while parent.setdefault(group, group) != group:
            group = parent[group]
        return group

    first_group_by_digest: dict[str, str] = {}
    for image in images:
        digest = hashlib.sha256(image.path.read_bytes()).hexdigest()
        other = first_group_by_digest.setdefault(digest, image.group)
        parent[find(image.group)] = find(other)
    return [LabelledImage(image.path, image.label, find(image.group)) for image in images]


def load_model_inputs(
    paths: Iterable[Path],
    input_size: int,
    *,
    progress: Callable[[int], None] | None = None,
) -> tuple[np.ndarray, list[tuple[Path, str]]]:
    """Read and preprocess images (two threads: decoding releases the GIL).

    Returns (float16 array of shape (n_ok, 1, S, S), [(path, reason) for unreadable files]) with rows in order.
    """
    paths = list(paths)

    def load(path: Path) -> np.ndarray | str:
        try:
            return preprocess(read_xray(path), input_size)
        except XRayReadError as error:
            return str(error)

    rows: list[np.ndarray] = []
    failures: list[tuple[Path, str]] = []
    with ThreadPoolExecutor(max_workers=2) as pool:
        for path, result in zip(paths, pool.map(load, paths), strict=True):
            if isinstance(result, str):
                failures.append((path, result))
            else:
                rows.append(result.astype(np.float16))
            if progress:
                progress(1)
    array = np.stack(rows) if rows else np.zeros((0, 1, input_size, input_size), dtype=np.float16)
    return array, failures


@dataclass(frozen=True)
class ArraySplit:
    inputs: np.ndarray  # float16 (n, 1, S, S), already preprocessed
    labels: np.ndarray  # int64 (n,)


def load_npz(path: str | os.PathLike[str], input_size: int) -> tuple[ArraySplit, ArraySplit]:
    """PneumoniaMNIST layout: ``train_images``/``train_labels`` and ``val_images``/``val_labels`` (its own split)."""
    try:
        with np.load(path) as data:
            arrays = {key: data[key] for key in ("train_images", "train_labels", "val_images", "val_labels")}
    except (OSError, ValueError, KeyError) as error:
        raise TrainingDataError(f"{path} is not a PneumoniaMNIST-style npz file ({error}).") from None

    def split(images: np.ndarray, labels: np.ndarray) -> ArraySplit:
        inputs = [
            preprocess(XRay(image.astype(np.float32) / 255.0, _NPZ_FACTS), input_size).astype(np.float16)
            for image in images
        ]
        return ArraySplit(np.stack(inputs), labels.reshape(-1).astype(np.int64))

    return split(arrays["train_images"], arrays["train_labels"]), split(arrays["val_images"], arrays["val_labels"])


_NPZ_FACTS = SourceFacts("NPZ", 28, 28, 8, "MONOCHROME2")
