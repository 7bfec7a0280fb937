"""The PACS page and the Settings section, in the real window against a real pynetdicom Query/Retrieve SCP: an
administrator sets up and tests a connection; a clinician searches, retrieves into the worklist, cancels, and reads
errors in plain words."""

from __future__ import annotations

import pytest

from pneumodesk.pacs.settings import DimseSettings, PacsConnection, Protocol
from tests.node_builders import OWNER, sign_in
from tests.pacs.instances import PATIENT_ID, sample_study
from tests.pacs.orthanc import free_port
from tests.pacs.qr_scp import SCP_AE, QueryRetrieveSCP

from .conftest import BATCH_TIMEOUT_MS

TIMEOUT_MS = 30_000


@pytest.fixture(scope="module")
def study():
    return sample_study(cr_count=3)


@pytest.fixture(scope="module")
def scp(study):
    server = QueryRetrieveSCP(study[1])
    yield server
    server.stop()


def connect(window, name: str, port: int) -> None:
    owner = sign_in(window.home, OWNER[0], OWNER[2])
    window.pacs.connections.save(owner, PacsConnection(name, Protocol.DIMSE, dimse=DimseSettings(
        "127.0.0.1", port, SCP_AE, "PNEUMODESK", 5.0)))


def search(qtbot, page, **fields) -> None:
    page.refresh()
    for name, value in fields.items():
        getattr(page, name).setText(value)
    with qtbot.waitSignal(page.calls.busy_changed, timeout=TIMEOUT_MS, check_params_cb=lambda busy: not busy):
        page.search_button.click()


def test_an_administrator_sets_up_and_tests_a_connection_in_settings(qtbot, make_window, home, scp):
    window = make_window(as_user=sign_in(home, OWNER[0], OWNER[2]))
    window.show_page("Settings")
    panel = window.settings_page._sections[0]
    assert panel.isVisible()
    panel.name.setText("radiology")
    panel.protocol.setCurrentIndex(1)
    panel.host.setText("127.0.0.1")
    panel.port.setValue(scp.port)
    panel.remote_ae.setText(SCP_AE)
    panel.save_button.click()
    assert "Saved radiology" in panel.result.text()
    with qtbot.waitSignal(panel.calls.busy_changed, timeout=TIMEOUT_MS, check_params_cb=lambda busy: not busy):
        panel.test_button.click()
    assert "answered a DICOM echo" in panel.result.text()


def test_a_clinician_does_not_see_the_connection_settings(window):
    window.show_page("Settings")
    assert not window.settings_page._sections[0].isVisible()


def test_search_then_retrieve_fills_the_worklist_and_lists_skipped_instances(qtbot, window, scp):
    connect(window, "radiology", scp.port)
    window.show_page("PACS")
    page = window.query_page
    search(qtbot, page, patient_id=PATIENT_ID, modalities="CR, SR")
    assert page.table.rowCount() == 2 and "2 series found" in page.status.text()
    assert {page.table.item(r, 1).text() for r in range(2)} == {PATIENT_ID}
    page.table.selectAll()
    progress: list[tuple[int, int]] = []
    page.retrieval_progress.connect(lambda done, total: progress.append((done, total)))
    with qtbot.waitSignal(window.predict_page.batch_finished, timeout=BATCH_TIMEOUT_MS):
        page.retrieve_button.click()
    assert window.pages.currentWidget() is window.predict_page
    assert window.predict_page.model.rowCount() == 3
    assert page.skipped.count() == 2 and "3 radiograph(s) sent to the worklist" in page.status.text()
    assert progress and progress[-1] == (5, 5)


def test_cancel_keeps_what_arrived(qtbot, window, study):
    slow = QueryRetrieveSCP(study[1], seconds_per_instance=0.3)
    try:
        connect(window, "slow", slow.port)
        window.show_page("PACS")
        page = window.query_page
        search(qtbot, page, patient_id=PATIENT_ID)
        page.table.selectAll()
        page.retrieve_button.click()
        assert page.cancel_button.isEnabled()
        qtbot.waitUntil(lambda: page.progress.value() >= 1, timeout=TIMEOUT_MS)
        with qtbot.waitSignal(page.calls.busy_changed, timeout=TIMEOUT_MS, check_params_cb=lambda busy: not busy):
            page.cancel_button.click()
        assert page.status.text().startswith("Cancelled")
        assert page.last_outcome is not None and page.last_outcome.cancelled
        assert 1 <= page.last_outcome.received < 4
    finally:
        slow.stop()


def test_errors_are_shown_in_plain_words(qtbot, window):
    connect(window, "down", free_port())
    window.show_page("PACS")
    page = window.query_page
    page.date_from.setText("1 Dec")
    page.refresh()
    page.search_button.click()
    assert "YYYY-MM-DD" in page.status.text()
    search(qtbot, page, date_from="")
    assert "did not answer" in page.status.text()


def test_signing_out_clears_patient_attributes(qtbot, window, scp):
    connect(window, "radiology", scp.port)
    window.show_page("PACS")
    page = window.query_page
    search(qtbot, page, patient_id=PATIENT_ID)
    assert page.table.rowCount() == 1
    page.set_session(None)
    assert page.table.rowCount() == 0 and page.rows == []


def test_the_cache_is_emptied_at_sign_out_when_the_workstation_is_set_to(qtbot, make_window, home, scp):
    window = make_window(as_user=sign_in(home, OWNER[0], OWNER[2]))
    connect(window, "radiology", scp.port)
    owner = window.session
    rows = window.pacs.query(owner, "radiology", window.query_page.query())
    assert window.pacs.retrieve(owner, "radiology", rows).files and window.pacs.cache.files()
    window.show_page("Settings")
    panel = window.settings_page._sections[0]
    panel.clear_at_sign_out.setChecked(True)
    assert window.settings.clear_pacs_cache_at_sign_out
    window.sign_out()
    assert window.pacs.cache.files() == []
