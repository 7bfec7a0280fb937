"""With the application's root logger at DEBUG, searching and retrieving over DIMSE and DICOMweb logs no patient
attribute and no PACS password (pynetdicom and dicomweb-client would, left alone)."""

from __future__ import annotations

import base64
import logging

from pneumodesk.pacs.query import StudyQuery

from .conftest import dicomweb_connection, dimse_connection, orthanc_dimse_connection
from .instances import PATIENT_ID
from .orthanc import PASSWORD, USER


def test_no_patient_attribute_or_secret_reaches_the_log(caplog, pacs, owner, clinician, scp, orthanc):
    caplog.set_level(logging.DEBUG)
    pacs.connections.save(owner, dimse_connection(scp.port))
    pacs.connections.save(owner, dicomweb_connection(orthanc), secret=PASSWORD)
    pacs.connections.save(owner, orthanc_dimse_connection(orthanc))
    for name in ("scp", "orthanc-web", "orthanc-dimse"):
        rows = pacs.query(clinician, name, StudyQuery(patient_id=PATIENT_ID, patient_name="TESTPERSON*"))
        assert len(pacs.retrieve(clinician, name, rows).files) == 3
    logged = caplog.text
    basic = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    for secret in (PATIENT_ID, "Testperson", "TESTPERSON", "ACC0001", "19700101", PASSWORD, basic):
        assert secret not in logged, secret
