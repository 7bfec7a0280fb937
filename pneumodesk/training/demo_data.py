"""The data the project ships for ``pneumodesk demo federation``, and how the demo shares it out between hospitals.

``resources/demo/pneumonia_demo_28.npz`` is in the PneumoniaMNIST layout (``train_images``/``train_labels``,
``val_images``/``val_labels``, uint8 28×28, label 1 = pneumonia) plus ``train_groups``/``val_groups``: an integer
patient/study id per image, so no patient is split between hospitals or between training and validation.
It holds whole patients drawn from the Kermany chest X-ray set (CC BY 4.0; see resources/demo/README.md), made by
``build_demo_npz`` from ../shared/data. The demo trains ``DEMO_ARCHITECTURE`` at ``DEMO_INPUT_SIZE`` px.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pneumodesk.model.default import RESOURCES

from .datasets import CLASS_NAMES, TrainingDataError, load_npz, patient_group
from .split import DEFAULT_SEED, grouped_split

DEMO_ARCHITECTURE = "pneumonet-tiny"
DEMO_INPUT_SIZE = 28
DEMO_FILE = "pneumonia_demo_28.npz"


def demo_npz_path() -> Path:
    """The shipped demo data (under the resources folder, or PNEUMODESK_RESOURCES)."""
    return RESOURCES / "demo" / DEMO_FILE


@dataclass(frozen=True)
class DemoData:
    """Preprocessed (``imaging.preprocess``) inputs, float32 (n, 1, S, S); labels int64; groups int64 patient ids."""

    train_inputs: np.ndarray
    train_labels: np.ndarray
    train_groups: np.ndarray
    validation_inputs: np.ndarray
    validation_labels: np.ndarray
    validation_groups: np.ndarray


def load_demo_data(path: str | os.PathLike[str] | None = None, input_size: int = DEMO_INPUT_SIZE) -> DemoData:
    """Load an npz in the PneumoniaMNIST layout (default: the shipped demo data).

    Without ``*_groups`` arrays (e.g. PneumoniaMNIST itself, which has no patient ids) every image is its own group.
    """
    path = Path(path) if path is not None else demo_npz_path()
    train, validation = load_npz(path, input_size)
    with np.load(path) as data:
        groups = {key: data[key].astype(np.int64) for key in ("train_groups", "val_groups") if key in data}
    train_groups = groups.get("train_groups", np.arange(len(train.labels), dtype=np.int64))
    offset = int(train_groups.max()) + 1 if len(train_groups) else 0
    validation_groups = groups.get("val_groups", offset + np.arange(len(validation.labels), dtype=np.int64))
    return DemoData(
        train.inputs.astype(np.float32),
        train.labels,
        train_groups,
        validation.inputs.astype(np.float32),
        validation.labels,
        validation_groups,
    )


def non_iid_shares(
    labels: np.ndarray, groups: np.ndarray, hospitals: int, seed: int = DEFAULT_SEED
) -> list[np.ndarray]:
    """Split image indices between ``hospitals`` so that each sees a different class mix and size.

    Whole patients are dealt out: hospital h (0-based) gets a share ∝ (H − h) of the NORMAL patients and ∝ (h + 1)
    of the PNEUMONIA patients (with 3 hospitals: 3:2:1 and 1:2:3), so hospital 0 sees mostly normal images and the
    last mostly pneumonia. Every index lands in exactly one share; a patient never straddles two hospitals.
    Deterministic for a seed. Returns sorted index arrays.
    """
    if hospitals < 1:
        raise ValueError("There must be at least one hospital.")
    labels = np.asarray(labels).reshape(-1)
    groups = np.asarray(groups).reshape(-1)
    unique, inverse = np.unique(groups, return_inverse=True)
    if hospitals > len(unique):
        raise TrainingDataError(f"{len(unique)} patients cannot be shared between {hospitals} hospitals.")
    group_label = np.zeros(len(unique), dtype=np.int64)  # a patient's majority label
    np.add.at(group_label, inverse, labels)
    group_size = np.bincount(inverse, minlength=len(unique))
    group_label = (2 * group_label >= group_size).astype(np.int64)
    rng = np.random.default_rng(seed)
    owner = np.empty(len(unique), dtype=np.int64)
    for label in (0, 1):
        members = rng.permutation(np.flatnonzero(group_label == label))
        weights = np.arange(hospitals, 0, -1) if label == 0 else np.arange(1, hospitals + 1)
        # cut the shuffled patients by cumulative image count, in proportion to the weights
        images = np.cumsum(group_size[members])
        cuts = np.searchsorted(images, images[-1] * np.cumsum(weights)[:-1] / weights.sum()) if len(members) else []
        for hospital, part in enumerate(np.split(members, cuts)):
            owner[part] = hospital
    shares = [np.flatnonzero(owner[inverse] == hospital) for hospital in range(hospitals)]
    empty = [index for index, share in enumerate(shares) if not len(share)]
    if empty:
        raise TrainingDataError("There is too little data to give every hospital a share.")
    return shares


def validation_split(
    labels: np.ndarray, groups: np.ndarray, *, seed: int = DEFAULT_SEED, folds: int = 10
) -> tuple[np.ndarray, np.ndarray]:
    """(training, validation) indices of one hospital's share: patient-grouped, stratified, ≈ 1/folds validation."""
    return grouped_split(np.asarray(labels), [str(group) for group in np.asarray(groups)], seed=seed, folds=folds)


def build_demo_npz(
    shared_data: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    normal: int = 1000,
    pneumonia: int = 2000,
    seed: int = DEFAULT_SEED,
) -> Path:
    """Make the shipped demo file from ``shared_data`` (kermany224 + index.csv): about ``normal`` + ``pneumonia``
    images of whole patients, 28×28 (bilinear, anti-aliased, from the 224-px squashed images), a patient-grouped
    ~1/7 validation split. Byte-identical files (same sha256 in index.csv) count as one patient."""
    from PIL import Image

    root = Path(shared_data)
    with open(root / "index.csv", newline="", encoding="utf-8") as handle:
        rows = [row for row in csv.DictReader(handle) if row["path"].startswith("kermany224/")]
    names = {row["path"]: patient_group(Path(row["path"]).name) for row in rows}
    parent: dict[str, str] = {}

    def find(name: str) -> str:
        while parent.setdefault(name, name) != name:
            name = parent[name]
        return name

    first_by_digest: dict[str, str] = {}
    for row in rows:
        other = first_by_digest.setdefault(row["sha256"], names[row["path"]])
        parent[find(names[row["path"]])] = find(other)
    group_of = {path: find(group) for path, group in names.items()}
    rng = np.random.default_rng(seed)
    chosen: list[dict[str, str]] = []
    for label, wanted in ((0, normal), (1, pneumonia)):
        of_class = [row for row in rows if row["label"] == CLASS_NAMES[label]]
        by_group: dict[str, list[dict[str, str]]] = {}
        for row in of_class:
            by_group.setdefault(group_of[row["path"]], []).append(row)
        taken = 0
        for group in rng.permutation(sorted(by_group)):
            if taken >= wanted:
                break
            chosen += by_group[group]
            taken += len(by_group[group])
    ids = {group: number for number, group in enumerate(sorted({group_of[row["path"]] for row in chosen}))}
    images = np.stack(
        [
            np.asarray(Image.open(root / row["path"]).convert("L").resize((28, 28), Image.Resampling.BILINEAR))
            for row in chosen
        ]
    ).astype(np.uint8)
    labels = np.array([CLASS_NAMES.index(row["label"]) for row in chosen], dtype=np.uint8)
    groups = np.array([ids[group_of[row["path"]]] for row in chosen], dtype=np.int32)
    train, validation = grouped_split(labels, [str(g) for g in groups], seed=seed, folds=7)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        out,
        train_images=images[train],
        train_labels=labels[train].reshape(-1, 1),
        train_groups=groups[train],
        val_images=images[validation],
        val_labels=labels[validation].reshape(-1, 1),
        val_groups=groups[validation],
    )
    return out
