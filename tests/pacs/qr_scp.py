"""A real DICOM Query/Retrieve SCP (pynetdicom) on 127.0.0.1, serving given datasets: C-ECHO, C-FIND (Study Root,
SERIES level, matching on the keys PneumoDesk sends, ``*`` wildcards) and C-GET (SERIES level)."""

from __future__ import annotations

import fnmatch
import ssl
import time
from collections.abc import Iterator

from pydicom.dataset import Dataset
from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, evt
from pynetdicom.events import Event
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
    Verification,
)

from pneumodesk.pacs.dimse import RECEIVED_STORAGE_CLASSES

SCP_AE = "TESTPACS"


def _matches(wanted: object, have: object) -> bool:
    text = "" if wanted is None else str(wanted)
    if not text:
        return True
    value = "" if have is None else str(have)
    if "-" in text and text.replace("-", "").isdigit():  # a date range
        start, _, end = text.partition("-")
        return (not start or value >= start) and (not end or value <= end)
    return fnmatch.fnmatchcase(value.upper(), text.upper())


class QueryRetrieveSCP:
    def __init__(self, datasets: list[Dataset], accepted_callers: tuple[str, ...] = (),
                 seconds_per_instance: float = 0.0, tls: ssl.SSLContext | None = None,
                 extra_storage_classes: tuple[str, ...] = ()) -> None:
        """``seconds_per_instance``: how long this PACS takes to send each instance (a slow PACS, for cancelling);
        ``tls``: serve DICOM over TLS with this server context; ``extra_storage_classes``: kinds it may hold beyond
        those PneumoDesk offers to take."""
        self.datasets = datasets
        self.seconds_per_instance = seconds_per_instance
        self.accepted_callers = accepted_callers
        ae = AE(ae_title=SCP_AE)
        ae.add_supported_context(Verification)
        ae.add_supported_context(StudyRootQueryRetrieveInformationModelFind)
        ae.add_supported_context(StudyRootQueryRetrieveInformationModelGet)
        for uid in (*RECEIVED_STORAGE_CLASSES, *extra_storage_classes):
            ae.add_supported_context(uid, ALL_TRANSFER_SYNTAXES, scp_role=True, scu_role=True)
        if accepted_callers:
            ae.require_calling_aet = list(accepted_callers)
        self.ae = ae
        self.server = ae.start_server(("127.0.0.1", 0), block=False, ssl_context=tls, evt_handlers=[
            (evt.EVT_C_FIND, self._find), (evt.EVT_C_GET, self._get)])
        self.port = int(self.server.server_address[1])

    def stop(self) -> None:
        self.server.shutdown()

    def _series(self, identifier: Dataset) -> dict[str, list[Dataset]]:
        found: dict[str, list[Dataset]] = {}
        for dataset in self.datasets:
            keys = [element.keyword for element in identifier if element.keyword != "QueryRetrieveLevel"]
            if all(_matches(identifier.get(k), dataset.get(k)) for k in keys
                   if k in ("PatientID", "PatientName", "AccessionNumber", "StudyDate", "Modality",
                            "BodyPartExamined", "StudyInstanceUID", "SeriesInstanceUID")):
                found.setdefault(str(dataset.SeriesInstanceUID), []).append(dataset)
        return found

    def _find(self, event: Event) -> Iterator[tuple[int, Dataset | None]]:
        identifier = event.identifier
        for members in self._series(identifier).values():
            first = members[0]
            answer = Dataset()
            answer.QueryRetrieveLevel = "SERIES"
            for element in identifier:
                if element.keyword in first:
                    setattr(answer, element.keyword, first.get(element.keyword))
                elif element.keyword == "NumberOfSeriesRelatedInstances":
                    answer.NumberOfSeriesRelatedInstances = len(members)
            yield 0xFF00, answer

    def _get(self, event: Event) -> Iterator[int | tuple[int, Dataset | None]]:
        members = [d for group in self._series(event.identifier).values() for d in group]
        yield len(members)
        for dataset in members:
            if event.is_cancelled:
                yield 0xFE00, None
                return
            if self.seconds_per_instance:
                time.sleep(self.seconds_per_instance)  # the peer is slow, not the test
            yield 0xFF00, dataset
