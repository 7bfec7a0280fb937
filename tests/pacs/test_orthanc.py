"""Against a real Orthanc on 127.0.0.1: DICOMweb (QIDO-RS, WADO-RS) and DIMSE (C-ECHO, C-FIND, C-GET) search and
retrieve, skipped kinds, cancel, wrong credentials, and a PACS that is down."""

from __future__ import annotations

import dataclasses

import pydicom
import pytest

from pneumodesk.pacs.cancel import CancelToken
from pneumodesk.pacs.errors import PacsFailure, PacsRefused, PacsUnreachable
from pneumodesk.pacs.query import StudyQuery

from .conftest import dicomweb_connection, orthanc_dimse_connection
from .instances import PATIENT_ID
from .orthanc import PASSWORD, free_port


@pytest.fixture(params=["dicomweb", "c-get", "c-move"])
def connection_name(request, pacs, owner, orthanc):
    if request.param == "dicomweb":
        pacs.connections.save(owner, dicomweb_connection(orthanc), secret=PASSWORD)
        return "orthanc-web"
    pacs.connections.save(owner, orthanc_dimse_connection(orthanc, request.param, move=request.param == "c-move"))
    return request.param


def test_echo(pacs, owner, connection_name):
    assert "answered" in pacs.test(owner, connection_name)


def test_search_by_patient_and_date_range(pacs, clinician, connection_name, study):
    import datetime as dt

    query = StudyQuery(patient_id=PATIENT_ID, date_from=dt.date(2026, 11, 30), date_to=dt.date(2026, 12, 2))
    rows = pacs.query(clinician, connection_name, query)
    assert [(row.series_uid, row.modality) for row in rows] == [(study[0].cr_series_uid, "CR")]
    assert rows[0].instances == 4 and rows[0].patient_id == PATIENT_ID
    assert pacs.query(clinician, connection_name, dataclasses.replace(query, date_from=dt.date(2027, 1, 1),
                                                                      date_to=None)) == []


def test_retrieve_keeps_radiographs_and_skips_the_report_and_the_multiframe(pacs, clinician, connection_name):
    rows = pacs.query(clinician, connection_name, StudyQuery(patient_id=PATIENT_ID, modalities=("CR", "SR")))
    outcome = pacs.retrieve(clinician, connection_name, rows)
    assert len(outcome.files) == 3 and outcome.received == 5 and not outcome.cancelled
    reasons = " ".join(item.reason for item in outcome.skipped)
    assert "multi-frame" in reasons and "holds no image" in reasons
    assert {pydicom.dcmread(path).Modality for path in outcome.files} == {"CR"}


def test_cancel_mid_retrieve(pacs, clinician, connection_name):
    rows = pacs.query(clinician, connection_name, StudyQuery(patient_id=PATIENT_ID))
    cancel = CancelToken()
    outcome = pacs.retrieve(clinician, connection_name, rows, cancel, lambda done, total: cancel.cancel())
    assert outcome.cancelled and outcome.received == 1


def test_wrong_password_is_refused_in_plain_words(pacs, owner, clinician, orthanc):
    pacs.connections.save(owner, dicomweb_connection(orthanc, "wrong"), secret="not-the-password")
    with pytest.raises(PacsRefused, match="refused the credentials"):
        pacs.query(clinician, "wrong", StudyQuery())


def test_c_move_to_an_ae_title_orthanc_does_not_know_is_explained(pacs, owner, clinician, orthanc):
    connection = orthanc_dimse_connection(orthanc, "unknown-destination", move=True)
    assert connection.dimse is not None
    pacs.connections.save(owner, dataclasses.replace(connection, dimse=dataclasses.replace(
        connection.dimse, local_ae="STRANGER")))
    rows = pacs.query(clinician, "unknown-destination", StudyQuery(patient_id=PATIENT_ID))
    with pytest.raises((PacsFailure, PacsRefused), match="C-MOVE destination"):
        pacs.retrieve(clinician, "unknown-destination", rows)


def test_a_called_ae_title_orthanc_does_not_have_is_refused(pacs, owner, orthanc):
    connection = orthanc_dimse_connection(orthanc, "wrong-ae")
    assert connection.dimse is not None
    pacs.connections.save(owner, dataclasses.replace(connection, dimse=dataclasses.replace(
        connection.dimse, remote_ae="NOT-ORTHANC")))
    with pytest.raises(PacsRefused):
        pacs.test(owner, "wrong-ae")


def test_dicomweb_pacs_down(pacs, owner, clinician, orthanc):
    connection = dicomweb_connection(orthanc, "down")
    assert connection.dicomweb is not None
    down = dataclasses.replace(connection, dicomweb=dataclasses.replace(
        connection.dicomweb, base_url=f"http://127.0.0.1:{free_port()}/dicom-web"))
    pacs.connections.save(owner, down, secret=PASSWORD)
    with pytest.raises(PacsUnreachable, match="did not answer"):
        pacs.query(clinician, "down", StudyQuery())
