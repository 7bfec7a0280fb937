"""The demo's shipped data and how it is shared between hospitals: whole patients, different class mixes."""

from __future__ import annotations

import numpy as np
import pytest

from pneumodesk.training.datasets import TrainingDataError
from pneumodesk.training.demo_data import (
    DEMO_ARCHITECTURE,
    DEMO_INPUT_SIZE,
    demo_npz_path,
    load_demo_data,
    non_iid_shares,
    validation_split,
)


def toy_patients(patients: int = 60, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """1–4 images per patient, one label per patient, about a third NORMAL."""
    rng = np.random.default_rng(seed)
    groups = np.repeat(np.arange(patients), rng.integers(1, 5, patients))
    labels = (rng.random(patients) > 0.33).astype(np.int64)[groups]
    return labels, groups


def test_shares_keep_patients_within_one_hospital_and_differ_in_class_mix():
    labels, groups = toy_patients()
    shares = non_iid_shares(labels, groups, 3, seed=1)
    assert sorted(np.concatenate(shares).tolist()) == list(range(len(labels)))  # every image exactly once
    owners = [{int(g) for g in groups[share]} for share in shares]
    assert all(not (owners[a] & owners[b]) for a in range(3) for b in range(a + 1, 3))
    rates = [labels[share].mean() for share in shares]
    assert rates[0] < rates[1] < rates[2]
    assert rates[2] - rates[0] > 0.2
    again = non_iid_shares(labels, groups, 3, seed=1)
    assert all(np.array_equal(a, b) for a, b in zip(shares, again, strict=True))


def test_one_hospital_gets_everything_and_too_many_are_refused():
    labels, groups = toy_patients(10)
    assert np.array_equal(non_iid_shares(labels, groups, 1)[0], np.arange(len(labels)))
    with pytest.raises(TrainingDataError):
        non_iid_shares(labels, groups, 11)


def test_validation_split_is_patient_grouped():
    labels, groups = toy_patients(80)
    train, validation = validation_split(labels, groups, seed=3)
    assert len(validation) and not set(groups[train]) & set(groups[validation])
    assert len(train) + len(validation) == len(labels)


def test_shipped_demo_data_is_in_the_pneumoniamnist_layout_with_patient_groups():
    path = demo_npz_path()
    assert path.is_file() and path.stat().st_size < 5_000_000
    with np.load(path) as data:
        assert data["train_images"].dtype == np.uint8 and data["train_images"].shape[1:] == (28, 28)
        assert data["train_labels"].shape == (len(data["train_images"]), 1)
        assert not set(data["train_groups"].tolist()) & set(data["val_groups"].tolist())
    demo = load_demo_data()
    assert demo.train_inputs.shape[1:] == (1, DEMO_INPUT_SIZE, DEMO_INPUT_SIZE)
    assert demo.train_inputs.dtype == np.float32
    assert set(demo.train_labels.tolist()) == {0, 1} and set(demo.validation_labels.tolist()) == {0, 1}
    assert len(demo.train_labels) > 2000 and len(demo.validation_labels) > 300
    assert DEMO_ARCHITECTURE == "pneumonet-tiny"


def test_npz_without_groups_gives_each_image_its_own_group(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "mnist.npz"
    np.savez(
        path,
        train_images=rng.integers(0, 255, (6, 28, 28), dtype=np.uint8),
        train_labels=np.array([[0], [1], [0], [1], [1], [0]]),
        val_images=rng.integers(0, 255, (2, 28, 28), dtype=np.uint8),
        val_labels=np.array([[0], [1]]),
    )
    demo = load_demo_data(path)
    assert demo.train_groups.tolist() == list(range(6)) and demo.validation_groups.tolist() == [6, 7]
