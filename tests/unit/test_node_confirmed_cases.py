"""Clinical readings kept by image digest, and the "Confirmed cases" dataset built from them: counts per class,
unsure never a label, a patient-grouped split (DICOM PatientID), changed or vanished files refused with their
reason, its own images for the privacy ledger, audit by count only."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from pneumodesk.node import NodeService, PermissionDenied, RegisteredDatasetError
from pneumodesk.node.readings import Reading
from tests.builders import chest_like, dicom_dataset, to_uint16, write_dicom, write_png
from tests.node_builders import CLINICIAN, OWNER, seed_node, sign_in


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def node(tmp_path):
    seed_node(tmp_path / "home")
    service = NodeService.open(tmp_path / "home")
    yield service
    service.close()


@pytest.fixture
def owner(tmp_path, node):
    return sign_in(tmp_path / "home", OWNER[0], OWNER[2])


@pytest.fixture
def clinician(tmp_path, node):
    return sign_in(tmp_path / "home", CLINICIAN[0], CLINICIAN[2])


def read_images(node, clinician, folder: Path, per_class: int = 6) -> list[Path]:
    """``per_class`` normal and pneumonia readings on distinct PNGs, plus one unsure."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(2 * per_class + 1):
        path = write_png(folder / f"scan_{index:03d}.png", chest_like(40, 40, seed=index))
        reading = Reading.UNSURE if index == 2 * per_class else (Reading.NORMAL if index % 2 else Reading.PNEUMONIA)
        node.readings.record(clinician, digest(path), path, reading)
        paths.append(path)
    return paths


def test_readings_are_kept_by_digest_the_latest_wins_and_the_audit_holds_counts_only(tmp_path, node, clinician):
    path = write_png(tmp_path / "a.png", chest_like(40, 40, seed=1))
    node.readings.record(clinician, digest(path), path, Reading.NORMAL)
    node.readings.record(clinician, digest(path), path, "pneumonia")
    assert node.readings.get(digest(path)) is Reading.PNEUMONIA
    assert node.readings.counts()[Reading.PNEUMONIA] == 1
    entries = [e for e in node.audit.read(action="reading_recorded")]
    assert len(entries) == 2 and all(e.details == {"count": 1} for e in entries)
    text = json.dumps([e.details for e in node.audit.read()]) + "".join(e.target for e in node.audit.read())
    assert digest(path) not in text and "a.png" not in text and "pneumonia" not in text
    node.readings.record(clinician, digest(path), path, None)
    assert node.readings.get(digest(path)) is None


def test_a_reading_needs_a_digest_and_a_known_reading(tmp_path, node, clinician):
    path = write_png(tmp_path / "a.png", chest_like(40, 40, seed=1))
    with pytest.raises(ValueError):
        node.readings.record(clinician, "not-a-digest", path, Reading.NORMAL)
    with pytest.raises(ValueError):
        node.readings.record(clinician, digest(path), path, "maybe")


def test_confirmed_cases_register_with_counts_split_and_leave_unsure_out(tmp_path, node, owner, clinician):
    read_images(node, clinician, tmp_path / "ward")
    info = node.confirmed_cases.register(owner)
    assert (info.kind, info.name) == ("readings", "Confirmed cases")
    assert (info.normal, info.pneumonia) == (6, 6)
    assert info.training_count + info.validation_count == 12 and info.validation_count >= 1
    assert info.unreadable == ()  # unsure is simply not a confirmed case
    training = node.datasets.files(info.id, "training")
    validation = node.datasets.files(info.id, "validation")
    assert len(training) + len(validation) == 12
    assert all(path.is_absolute() and path.exists() for path, _ in training + validation)
    audit = node.audit.read(action="dataset_registered")[-1]
    assert audit.details["kind"] == "readings" and "ward" not in json.dumps(audit.details)


def test_a_changed_or_vanished_file_is_refused_with_its_reason_and_the_rest_still_register(
        tmp_path, node, owner, clinician):
    paths = read_images(node, clinician, tmp_path / "ward", per_class=5)
    write_png(paths[0], chest_like(40, 40, seed=999))  # same path, other bytes
    paths[1].unlink()
    info = node.confirmed_cases.register(owner)
    reasons = dict(info.unreadable)
    assert "changed since it was read" in reasons[paths[0].as_posix()]
    assert "no longer there" in reasons[paths[1].as_posix()]
    assert info.normal + info.pneumonia == 8


def test_a_file_that_changes_after_registration_is_refused_at_use_with_its_reason(tmp_path, node, owner, clinician):
    read_images(node, clinician, tmp_path / "ward")
    info = node.confirmed_cases.register(owner)
    (victim, _label), *_ = node.datasets.files(info.id, "training")
    write_png(victim, chest_like(40, 40, seed=4242))
    usable, refused = node.datasets.checked_files(info.id, "training")
    assert victim not in [p for p, _ in usable]
    assert refused == [(victim, "The file changed since it was read (its content digest differs).")]


def test_images_of_one_dicom_patient_stay_on_one_side_of_the_split(tmp_path, node, owner, clinician):
    folder = tmp_path / "dicom"
    folder.mkdir()
    rng = np.random.default_rng(3)
    by_patient: dict[str, list[str]] = {}
    for patient in range(8):
        for view in range(3):
            dataset = dicom_dataset(to_uint16(chest_like(40, 40, seed=int(rng.integers(1 << 30)))))
            dataset.PatientID = f"P{patient}"
            path = write_dicom(folder / f"p{patient}_{view}.dcm", dataset)
            node.readings.record(clinician, digest(path), path, Reading.PNEUMONIA if patient % 2 else Reading.NORMAL)
            by_patient.setdefault(f"P{patient}", []).append(path.as_posix())
    info = node.confirmed_cases.register(owner, "DICOM readings")
    validation = {p.as_posix() for p, _ in node.datasets.files(info.id, "validation")}
    assert validation
    for paths in by_patient.values():
        assert len({p in validation for p in paths}) == 1


def test_registering_needs_manage_datasets_and_both_classes(tmp_path, node, owner, clinician):
    with pytest.raises(PermissionDenied):
        node.confirmed_cases.register(clinician)
    path = write_png(tmp_path / "only.png", chest_like(40, 40, seed=5))
    node.readings.record(clinician, digest(path), path, Reading.NORMAL)
    with pytest.raises(RegisteredDatasetError, match="PNEUMONIA"):
        node.confirmed_cases.register(owner)


def test_the_confirmed_cases_carry_their_own_privacy_ledger_by_image(tmp_path, node, owner, clinician):
    read_images(node, clinician, tmp_path / "ward")
    info = node.confirmed_cases.register(owner)
    node.ledger.record(info.id, "a" * 64, 1, 1.5, 1e-5, 1.1, 0.1, 10)
    assert node.ledger.spent(info.id) == pytest.approx(1.5)
    node.datasets.remove(owner, info.id)
    again = node.confirmed_cases.register(owner)
    assert node.ledger.spent(again.id) == pytest.approx(1.5)  # the same images carry what they spent


def test_an_admin_can_approve_a_training_plan_for_the_confirmed_cases(tmp_path, node, owner, clinician):
    from tests.unit.test_node_approvals import COORDINATOR, make_plan

    read_images(node, clinician, tmp_path / "ward")
    info = node.confirmed_cases.register(owner)
    approval = node.approvals.approve(owner, make_plan(), info.id, COORDINATOR, epsilon_total=4.0)
    assert approval.dataset_id == info.id
    assert len(node.datasets.files(info.id, "training")) == info.training_count  # what participation trains on
