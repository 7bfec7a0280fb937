"""DIMSE against a real pynetdicom Query/Retrieve SCP on 127.0.0.1: echo, search, C-GET into the cache, skipped
kinds, cancel mid-retrieve, a PACS that is down, permissions and audit."""

from __future__ import annotations

import copy
import dataclasses
import socket

import pydicom
import pytest
from pydicom.uid import generate_uid

from pneumodesk.node import PermissionDenied
from pneumodesk.pacs.cancel import CancelToken
from pneumodesk.pacs.errors import PacsError, PacsRefused, PacsUnreachable
from pneumodesk.pacs.query import StudyQuery

from .conftest import dimse_connection
from .instances import PATIENT_ID, PATIENT_NAME
from .qr_scp import QueryRetrieveSCP
from .tls_certs import make_ca_and_server, server_context


def latest(pacs, action: str):
    return max(pacs.node.audit.read(action=action), key=lambda entry: entry.id)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_echo_answers_in_plain_words_and_is_audited(pacs, owner, scp):
    pacs.connections.save(owner, dimse_connection(scp.port))
    answer = pacs.test(owner, "scp")
    assert "answered a DICOM echo" in answer
    assert latest(pacs, "pacs_echo").outcome == "ok"


def test_only_an_administrator_configures_connections(pacs, clinician, scp):
    with pytest.raises(PermissionDenied):
        pacs.connections.save(clinician, dimse_connection(scp.port))


def test_search_finds_the_chest_series_and_the_audit_keeps_no_patient_attribute(pacs, owner, clinician, scp):
    pacs.connections.save(owner, dimse_connection(scp.port))
    rows = pacs.query(clinician, "scp", StudyQuery(patient_id=PATIENT_ID))
    assert [row.modality for row in rows] == ["CR"]
    assert rows[0].patient_id == PATIENT_ID and rows[0].instances == 4
    assert pacs.query(clinician, "scp", StudyQuery(patient_id="SOMEONE-ELSE")) == []
    entries = sorted(pacs.node.audit.read(action="pacs_query"), key=lambda entry: entry.id)
    assert entries[-2].details["fields"] == "patient_id" and entries[-2].details["series"] == 1
    everything = repr([(e.target, e.details) for e in pacs.node.audit.read()])
    assert PATIENT_ID not in everything and "Testperson" not in everything and "SOMEONE-ELSE" not in everything


def test_retrieve_writes_single_frame_radiographs_and_lists_the_rest_as_skipped(pacs, owner, clinician, scp):
    pacs.connections.save(owner, dimse_connection(scp.port))
    rows = pacs.query(clinician, "scp", StudyQuery(patient_name="TESTPERSON*", modalities=("CR", "SR")))
    assert sorted(row.modality for row in rows) == ["CR", "SR"]
    seen: list[tuple[int, int]] = []
    outcome = pacs.retrieve(clinician, "scp", rows, progress=lambda done, total: seen.append((done, total)))
    assert len(outcome.files) == 3 and not outcome.cancelled
    reasons = " ".join(item.reason for item in outcome.skipped)
    assert "multi-frame" in reasons and "holds no image" in reasons
    assert seen[-1] == (5, 5)
    for path in outcome.files:
        assert PATIENT_ID not in path.name and path.parent == pacs.cache.folder
        assert pydicom.dcmread(path).Modality == "CR"
    audit = latest(pacs, "pacs_retrieve")
    assert audit.details | {} == {"series": 2, "series_done": 2, "received": 5, "written": 3, "skipped": 2,
                                  "cancelled": False}
    assert PATIENT_NAME not in repr(audit)


def test_cancel_stops_between_instances_and_keeps_what_arrived(pacs, owner, clinician, scp):
    pacs.connections.save(owner, dimse_connection(scp.port))
    rows = pacs.query(clinician, "scp", StudyQuery())
    cancel = CancelToken()

    def cancel_after_first(done: int, total: int) -> None:
        cancel.cancel()

    outcome = pacs.retrieve(clinician, "scp", rows, cancel, cancel_after_first)
    assert outcome.cancelled and outcome.received == 1 and len(outcome.files) == 1
    assert latest(pacs, "pacs_retrieve").details["cancelled"] is True
    # The SCP is still usable afterwards: the aborted association did not wedge it.
    assert "answered" in pacs.test(owner, "scp")


def test_a_pacs_that_is_down_is_said_in_plain_words_and_audited_as_failed(pacs, owner, clinician):
    pacs.connections.save(owner, dimse_connection(_free_port(), "down"))
    with pytest.raises(PacsUnreachable, match="did not answer"):
        pacs.query(clinician, "down", StudyQuery())
    assert latest(pacs, "pacs_query").outcome == "failed"


def test_an_unregistered_calling_ae_title_is_refused(pacs, owner, study):
    strict = QueryRetrieveSCP(study[1], accepted_callers=("SOMEONE",))
    try:
        pacs.connections.save(owner, dimse_connection(strict.port, "strict"))
        with pytest.raises(PacsRefused, match="AE title"):
            pacs.test(owner, "strict")
    finally:
        strict.stop()


def test_dicom_over_tls_checks_the_pacs_certificate(tmp_path, pacs, owner, clinician, study):
    ca, cert, key = make_ca_and_server(tmp_path / "pki")
    other_ca, _, _ = make_ca_and_server(tmp_path / "other", "other")
    secure = QueryRetrieveSCP(study[1], tls=server_context(cert, key))
    try:
        trusted = dimse_connection(secure.port, "tls")
        assert trusted.dimse is not None
        pacs.connections.save(owner, dataclasses.replace(trusted, dimse=dataclasses.replace(
            trusted.dimse, tls_ca_file=str(ca))))
        assert "answered" in pacs.test(owner, "tls")
        rows = pacs.query(clinician, "tls", StudyQuery(patient_id=PATIENT_ID))
        assert len(pacs.retrieve(clinician, "tls", rows).files) == 3

        pacs.connections.save(owner, dataclasses.replace(trusted, name="untrusted", dimse=dataclasses.replace(
            trusted.dimse, tls_ca_file=str(other_ca))))
        with pytest.raises(PacsUnreachable, match="certificate"):
            pacs.test(owner, "untrusted")
        plain = dimse_connection(secure.port, "plain")
        pacs.connections.save(owner, plain)
        with pytest.raises(PacsError):
            pacs.test(owner, "plain")
    finally:
        secure.stop()


def test_an_instance_of_a_kind_not_offered_is_listed_as_not_sent(pacs, owner, clinician, study):
    instances = study[1]
    rt_dose = copy.deepcopy(instances[0])
    rt_dose.SOPClassUID = rt_dose.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.481.2"  # RT Dose
    rt_dose.SOPInstanceUID = rt_dose.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    peer = QueryRetrieveSCP([*instances, rt_dose], extra_storage_classes=("1.2.840.10008.5.1.4.1.1.481.2",))
    try:
        pacs.connections.save(owner, dimse_connection(peer.port, "with-dose"))
        rows = pacs.query(clinician, "with-dose", StudyQuery(patient_id=PATIENT_ID))
        outcome = pacs.retrieve(clinician, "with-dose", rows)
        assert len(outcome.files) == 3
        assert any("1 instance(s)" in item.where and "could not send" in item.reason for item in outcome.skipped)
    finally:
        peer.stop()
