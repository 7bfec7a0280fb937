"""Registering local datasets: folders and CSVs, unreadable files listed with reasons, a fixed patient-grouped
validation split stored in the node store, nothing copied, permissions and audit."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest

from pneumodesk.imaging.patient_groups import patient_group
from pneumodesk.node import NodeService, PermissionDenied, RegisteredDatasetError
from pneumodesk.node.datasets import validation_mask
from tests.builders import chest_like, write_png
from tests.node_builders import CLINICIAN, OWNER, seed_node, sign_in

PATIENTS_PER_CLASS = 12
IMAGES_PER_PATIENT = 3


def patient_folder(root: Path) -> Path:
    """NORMAL/ and PNEUMONIA/ with three images per patient, a corrupt PNG, an empty file and a non-image."""
    for label, name in enumerate(("NORMAL", "PNEUMONIA")):
        folder = root / name
        folder.mkdir(parents=True)
        for patient in range(PATIENTS_PER_CLASS):
            for view in range(IMAGES_PER_PATIENT):
                seed = 1000 * label + 10 * patient + view
                write_png(folder / f"person{label}{patient:02d}_{'virus' if label else 'normal'}_{view}.png",
                          chest_like(40, 40, seed=seed))
    (root / "PNEUMONIA" / "person9999_virus_0.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"broken" * 20)
    (root / "NORMAL" / "empty.png").write_bytes(b"")
    (root / "NORMAL" / "notes.txt").write_text("not an image")  # not picked up at all
    return root


@pytest.fixture
def node(tmp_path):
    seed_node(tmp_path / "home")
    service = NodeService.open(tmp_path / "home")
    yield service
    service.close()


@pytest.fixture
def owner(tmp_path, node):
    return sign_in(tmp_path / "home", OWNER[0], OWNER[2])


def test_a_folder_is_registered_in_place_with_counts_unreadable_files_and_a_grouped_split(tmp_path, node, owner):
    root = patient_folder(tmp_path / "xrays")
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file() and "xrays" in p.parts)

    info = node.datasets.register(owner, "Ward 4 2025", root)

    total = 2 * PATIENTS_PER_CLASS * IMAGES_PER_PATIENT
    assert (info.kind, info.name, info.source) == ("folder", "Ward 4 2025", str(root.resolve()))
    assert (info.normal, info.pneumonia) == (total // 2, total // 2)
    assert info.training_count + info.validation_count == total
    assert 0.05 * total <= info.validation_count <= 0.2 * total
    assert dict(info.unreadable).keys() == {"PNEUMONIA/person9999_virus_0.png", "NORMAL/empty.png"}
    assert "empty" in dict(info.unreadable)["NORMAL/empty.png"]
    training = node.datasets.files(info.id, "training")
    validation = node.datasets.files(info.id, "validation")
    assert len(training) == info.training_count and len(validation) == info.validation_count
    assert all(path.is_file() and path.is_relative_to(root.resolve()) for path, _ in training + validation)
    assert {label for _, label in validation} == {0, 1}  # stratified: both classes in validation
    groups = lambda files: {patient_group(path.name) for path, _ in files}  # noqa: E731
    assert not groups(training) & groups(validation)  # no patient on both sides
    after = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file() and "xrays" in p.parts)
    assert after == before  # nothing copied, nothing written next to the data
    assert not list((tmp_path / "home").rglob("*.png"))


def test_the_split_is_stored_stable_across_calls_and_reopening_and_deterministic(tmp_path, node, owner):
    root = patient_folder(tmp_path / "xrays")
    info = node.datasets.register(owner, "A", root)
    first = node.datasets.files(info.id, "validation")
    node.close()
    reopened = NodeService.open(tmp_path / "home")
    second = reopened.datasets.files(info.id, "validation")
    again = reopened.datasets.register(sign_in(tmp_path / "home", OWNER[0], OWNER[2]), "B", root)

    assert first == second == reopened.datasets.files(again.id, "validation")
    with sqlite3.connect(tmp_path / "home" / "node.sqlite3") as db:
        stored = db.execute("select count(*) from dataset_files where dataset_id = ? and split = 'validation'",
                            (info.id,)).fetchone()[0]
    assert stored == len(first)
    reopened.close()


def test_validation_mask_keeps_groups_together_and_depends_on_the_seed():
    labels = np.array([0, 1] * 60)
    groups = [f"p{i // 3}" for i in range(120)]
    mask = validation_mask(labels, groups)
    for group in set(groups):
        members = {bool(mask[i]) for i, g in enumerate(groups) if g == group}
        assert len(members) == 1
    assert np.array_equal(mask, validation_mask(labels, groups))
    assert not np.array_equal(mask, validation_mask(labels, groups, seed=5))


def test_a_csv_dataset_with_relative_and_absolute_paths_and_bad_rows(tmp_path, node, owner):
    images = tmp_path / "csvdata" / "img"
    images.mkdir(parents=True)
    rows = ["path,label"]
    for i in range(24):
        name = f"patient{i:02d}.png"
        write_png(images / name, chest_like(40, 40, seed=i))
        rows.append(f"img/{name},{'PNEUMONIA' if i % 2 else 0}")
    outside = write_png(tmp_path / "elsewhere.png", chest_like(40, 40, seed=99))
    rows += [f"{outside},1", "img/missing.png,NORMAL", "img/patient00.png,maybe", "img/patient01.png,1", "lonely"]
    csv_path = tmp_path / "csvdata" / "labels.csv"
    csv_path.write_text("\n".join(rows) + "\n", encoding="utf-8")

    info = node.datasets.register(owner, "CSV set", csv_path)

    assert info.kind == "csv" and (info.normal, info.pneumonia) == (12, 13)
    reasons = dict(info.unreadable)
    assert "does not exist" in reasons["img/missing.png"]
    assert "unknown label 'maybe'" in reasons["img/patient00.png"] or "listed again" in reasons["img/patient00.png"]
    assert "listed again" in reasons["img/patient01.png"]
    assert "expected two columns" in reasons["(row 30)"]
    everything = node.datasets.files(info.id, "training") + node.datasets.files(info.id, "validation")
    assert (outside, 1) in everything and (images / "patient02.png", 0) in everything


@pytest.mark.parametrize("layout, message", [
    ("missing", "no folder or CSV file"),
    ("one-class", "missing: PNEUMONIA"),
    ("only-normal-readable", "no readable PNEUMONIA images"),
])
def test_unusable_sources_are_refused_in_plain_words(tmp_path, node, owner, layout, message):
    root = tmp_path / "bad"
    if layout != "missing":
        (root / "NORMAL").mkdir(parents=True)
        for i in range(4):
            write_png(root / "NORMAL" / f"p{i}.png", chest_like(40, 40, seed=i))
    if layout == "only-normal-readable":
        (root / "PNEUMONIA").mkdir()
        (root / "PNEUMONIA" / "p9.png").write_bytes(b"junk")

    with pytest.raises(RegisteredDatasetError, match=message):
        node.datasets.register(owner, "bad", root)
    assert node.datasets.list(owner) == []


def test_permissions_names_listing_removal_and_audit(tmp_path, node, owner):
    root = patient_folder(tmp_path / "xrays")
    clinician = sign_in(tmp_path / "home", CLINICIAN[0], CLINICIAN[2])

    with pytest.raises(PermissionDenied, match="manage datasets"):
        node.datasets.register(clinician, "mine", root)
    with pytest.raises(PermissionDenied):
        node.datasets.list(clinician)
    info = node.datasets.register(owner, "Ward", root)
    with pytest.raises(RegisteredDatasetError, match="already registered"):
        node.datasets.register(owner, " Ward ", root)
    with pytest.raises(PermissionDenied):
        node.datasets.remove(clinician, info.id)
    assert [d.id for d in node.datasets.list(owner)] == [info.id] and node.datasets.get(owner, info.id) == info

    node.datasets.remove(owner, info.id)

    assert node.datasets.list(owner) == [] and root.is_dir()
    with pytest.raises(RegisteredDatasetError, match=f"no dataset {info.id}"):
        node.datasets.files(info.id, "training")
    actions = [(r.action, r.outcome) for r in node.audit.read()]
    assert ("dataset_registered", "ok") in actions and ("dataset_removed", "ok") in actions
    assert ("manage_datasets", "denied") in actions
    registered = next(r for r in node.audit.read(action="dataset_registered"))
    assert registered.details["unreadable"] == 2 and str(root) not in str(registered.details)
    assert node.verify_audit().intact


def test_large_folders_are_checked_by_header_and_still_list_broken_files(tmp_path, node, owner, monkeypatch):
    import pneumodesk.node.datasets as datasets

    root = patient_folder(tmp_path / "xrays")
    write_png(root / "NORMAL" / "tiny.png", chest_like(8, 8))
    monkeypatch.setattr(datasets, "FULL_DECODE_LIMIT", 0)
    monkeypatch.setattr("pneumodesk.imaging.read_xray", lambda path: pytest.fail("a full decode was done"))

    info = node.datasets.register(owner, "big", root)

    reasons = dict(info.unreadable)
    assert reasons.keys() == {"PNEUMONIA/person9999_virus_0.png", "NORMAL/empty.png", "NORMAL/tiny.png"}
    assert "8×8" in reasons["NORMAL/tiny.png"] and "empty" in reasons["NORMAL/empty.png"]
    assert info.normal + info.pneumonia == 2 * PATIENTS_PER_CLASS * IMAGES_PER_PATIENT


def test_a_tiny_dataset_still_gets_a_split_and_one_too_small_is_refused_in_words():
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 1])  # four images per class, each its own patient
    mask = validation_mask(labels, [f"p{i}" for i in range(8)])
    assert 0 < mask.sum() < len(labels)
    with pytest.raises(RegisteredDatasetError, match="at least two different patients"):
        validation_mask(np.array([0, 1]), ["p0", "p0"])
