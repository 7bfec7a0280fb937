"""Images retrieved from a PACS (over DIMSE from a real pynetdicom Query/Retrieve SCP on 127.0.0.1) into the node's
local cache become Confirmed cases where they lie: read on the Predict page, registered on the Datasets page, grouped
by their DICOM patient, kept when the cache is pruned, and refused with a reason that names the PACS cache once the
cached file vanished or changed."""

from __future__ import annotations

import datetime as dt
import os
import time
from pathlib import Path

import pydicom
import pytest
from pydicom.uid import generate_uid

from pneumodesk.gui.main_window import MainWindow
from pneumodesk.node.readings import Reading
from pneumodesk.pacs.cache import CacheLimits
from pneumodesk.pacs.query import StudyQuery
from pneumodesk.pacs.settings import DimseSettings, PacsConnection, Protocol
from tests.gui.conftest import BATCH_TIMEOUT_MS
from tests.gui.test_confirmed_cases import owner_window, register_confirmed
from tests.node_builders import CLINICIAN, OWNER, sign_in
from tests.pacs.instances import StudyIds, cr_instance
from tests.pacs.qr_scp import SCP_AE, QueryRetrieveSCP

VANISHED = ("The image retrieved from the PACS is no longer in this workstation's cache (cleared or pruned since it "
            "was read); retrieve its study again to use it.")
CHANGED = ("The image in this workstation's PACS cache changed since it was read (its content digest differs); "
           "retrieve its study again to use it.")


def ward_study() -> list:
    """Three patients with two CR chest images each (instance numbers 1-6; odd: read as pneumonia, even: normal)
    and a seventh image read as unsure; a second study of another patient, retrieved later."""
    ward = StudyIds(generate_uid(), generate_uid(), generate_uid())
    later = StudyIds(generate_uid(), generate_uid(), generate_uid())
    patients = {1: "PDK-A", 2: "PDK-A", 3: "PDK-B", 4: "PDK-B", 5: "PDK-C", 6: "PDK-C", 7: "PDK-D"}
    return ([cr_instance(ward, n, 96, patient_id=patient) for n, patient in patients.items()]
            + [cr_instance(later, 8, 96, patient_id="LATER-E")])


def reading_of(path: Path) -> Reading:
    number = int(pydicom.dcmread(path, stop_before_pixels=True).InstanceNumber)
    return Reading.UNSURE if number == 7 else (Reading.PNEUMONIA if number % 2 else Reading.NORMAL)


@pytest.fixture
def scp():
    server = QueryRetrieveSCP(ward_study())
    yield server
    server.stop()


def retrieve(qtbot, window: MainWindow, query: StudyQuery) -> list[Path]:
    """Search and retrieve over DIMSE as the signed-in clinician; the images join the worklist and are predicted."""
    rows = window.pacs.query(window.session, "ward PACS", query)
    outcome = window.pacs.retrieve(window.session, "ward PACS", rows)
    with qtbot.waitSignal(window.predict_page.batch_finished, timeout=BATCH_TIMEOUT_MS):
        window._on_pacs_retrieved(outcome.files)
    return outcome.files


def test_pacs_images_become_confirmed_cases_kept_in_the_cache_and_refused_once_gone(
        qtbot, make_window, home, tmp_path, scp):
    owner_session = sign_in(home, OWNER[0], OWNER[2])
    clinician = make_window(as_user=sign_in(home, CLINICIAN[0], CLINICIAN[2]))
    clinician.pacs.connections.save(owner_session, PacsConnection(
        "ward PACS", Protocol.DIMSE, dimse=DimseSettings("127.0.0.1", scp.port, SCP_AE, "PNEUMODESK", 5.0)))
    cache = clinician.pacs.cache.folder
    files = retrieve(qtbot, clinician, StudyQuery(patient_id="PDK-*"))
    assert len(files) == 7 and all(path.parent == cache for path in files)
    read = {path: reading_of(path) for path in files}
    patient = {path.resolve(): str(pydicom.dcmread(path, stop_before_pixels=True).PatientID) for path in files}

    page = clinician.predict_page
    for proxy_row in range(page.proxy.rowCount()):
        page.select_proxy_row(proxy_row)
        item = page.model.entry(page.current_row())
        assert item.prediction is not None, item.error
        clinician.actions_by_id["agree"].trigger()
        keys = {Reading.NORMAL: "reading_normal", Reading.PNEUMONIA: "reading_pneumonia",
                Reading.UNSURE: "reading_unsure"}
        clinician.actions_by_id[keys[read[item.path]]].trigger()
    assert len(clinician.node.readings.confirmed()) == 6

    # A later retrieval prunes the cache (everything is past its age limit and over its size cap): the confirmed
    # cases stay, the image read as unsure goes.
    old = time.time() - 8 * 86_400
    for path in files:
        os.utime(path, (old, old))
    clinician.pacs.cache.limits = CacheLimits(max_bytes=1, max_age=dt.timedelta(days=7))
    later = retrieve(qtbot, clinician, StudyQuery(patient_id="LATER-E"))
    unsure = [path for path in files if read[path] is Reading.UNSURE]
    assert [path.exists() for path in files] == [path not in unsure for path in files]
    assert all(path.exists() for path in later)
    clinician.close()

    window = owner_window(make_window, home)
    datasets = register_confirmed(qtbot, window)
    assert "3 normal, 3 pneumonia (and 1 unsure" in datasets.confirmed_counts.text()
    dataset = window.node.confirmed_cases.latest(window.session)
    assert (dataset.normal, dataset.pneumonia, dataset.unreadable) == (3, 3, ())
    sides = {split: window.node.datasets.checked_files(dataset.id, split) for split in ("training", "validation")}
    used = {path: split for split, (usable, refused) in sides.items() for path, _ in usable}
    assert set(used) == {path.resolve() for path in files if path not in unsure}
    assert all(not refused for _, refused in sides.values())
    for one, other in ((a, b) for a in used for b in used if patient[a] == patient[b]):
        assert used[one] == used[other]  # one patient's images on one side of the split

    # The cache is cleared (or one image changes under the same name): at use, those images are refused with a
    # reason that names the PACS cache; the others are still used.
    confirmed = sorted(used)
    gone, changed = confirmed[0], confirmed[1]
    gone.unlink()
    changed.write_bytes(changed.read_bytes() + b"\0")
    refused = dict(sides_refused for split in ("training", "validation")
                   for sides_refused in window.node.datasets.checked_files(dataset.id, split)[1])
    assert refused == {gone: VANISHED, changed: CHANGED}
    usable = [path for split in ("training", "validation")
              for path, _ in window.node.datasets.checked_files(dataset.id, split)[0]]
    assert sorted(usable) == confirmed[2:]
