"""Nothing of the PACS work leaves for the federation: every connection opened while searching and retrieving goes
to the PACS itself (seen through Python's ``socket.connect`` audit event), and the egress log — the record of what
this node sent to its coordinator — stays empty."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

from pneumodesk.pacs.query import StudyQuery

from .conftest import dicomweb_connection, dimse_connection
from .instances import PATIENT_ID
from .orthanc import PASSWORD

_recording: list[list[tuple[str, int]]] = []


def _audit(event: str, args: tuple[object, ...]) -> None:
    if event == "socket.connect" and _recording and isinstance(args[1], tuple) and len(args[1]) >= 2:
        _recording[-1].append((str(args[1][0]), int(args[1][1])))


sys.addaudithook(_audit)  # audit hooks cannot be removed; this one records only inside ``connections()``


@contextmanager
def connections() -> Iterator[list[tuple[str, int]]]:
    seen: list[tuple[str, int]] = []
    _recording.append(seen)
    try:
        yield seen
    finally:
        _recording.pop()


def test_dimse_and_dicomweb_traffic_goes_only_to_the_pacs(pacs, owner, clinician, scp, orthanc):
    pacs.connections.save(owner, dimse_connection(scp.port))
    pacs.connections.save(owner, dicomweb_connection(orthanc), secret=PASSWORD)
    with connections() as seen:
        for name in ("scp", "orthanc-web"):
            rows = pacs.query(clinician, name, StudyQuery(patient_id=PATIENT_ID, modalities=("CR", "SR")))
            outcome = pacs.retrieve(clinician, name, rows)
            assert len(outcome.files) == 3
    assert seen and set(seen) <= {("127.0.0.1", scp.port), ("127.0.0.1", orthanc.http_port)}
    assert pacs.node.egress.totals() == {"requests": 0, "bytes_sent": 0, "bytes_received": 0}
