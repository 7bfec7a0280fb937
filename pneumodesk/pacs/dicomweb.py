"""A DICOMweb PACS (QIDO-RS search, WADO-RS retrieve) through ``dicomweb-client`` over a ``requests`` session.

Invariants: TLS verification is always on (the connection's CA file, else the system's trust store); the secret
is sent only as the Authorization header and never logged; every failure becomes a ``PacsError`` with a plain
sentence (the library's own error is logged at debug level without URL query strings).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import TypeVar

import requests
from dicomweb_client.api import DICOMwebClient
from pydicom.dataset import Dataset

from .cancel import CancelToken
from .errors import PacsFailure, PacsRefused, PacsUnreachable
from .peer import InstanceHandler, SeriesTransfer
from .query import RETURN_KEYS, SeriesRow, StudyQuery, merge_rows
from .quiet_logs import silence_library_logs
from .settings import AuthKind, DicomWebSettings

log = logging.getLogger(__name__)
T = TypeVar("T")
_FIELDS = (*RETURN_KEYS, "PatientID", "PatientName", "AccessionNumber", "StudyDate", "BodyPartExamined")


class _WildcardSession(requests.Session):
    """Sends a search's ``*`` wildcard as itself: ``*`` may stand unescaped in a query (RFC 3986), and some PACS
    (Orthanc's DICOMweb plugin among them) match ``%2A`` literally, so ``DOE*`` would find nobody."""

    def prepare_request(self, request: requests.Request) -> requests.PreparedRequest:
        prepared = super().prepare_request(request)
        if prepared.url and "?" in prepared.url:
            base, _, query = prepared.url.partition("?")
            prepared.url = f"{base}?{query.replace('%2A', '*')}"
        return prepared


class DicomWebPeer:
    def __init__(self, settings: DicomWebSettings, secret: str = "") -> None:
        silence_library_logs()
        self.settings = settings
        session = _WildcardSession()
        session.verify = settings.ca_file or True
        if settings.auth is AuthKind.BASIC:
            session.auth = (settings.username, secret)
        elif settings.auth is AuthKind.BEARER:
            session.headers["Authorization"] = f"Bearer {secret}"
        self.client = DICOMwebClient(settings.base_url, session=session, timeout=settings.timeout_s)
        # One retry after 0.5 s for a PACS that is briefly busy (429/503/504); a PACS that is down is said at once,
        # not after the library's default of five attempts with back-off (half a minute).
        self.client.set_http_retry_params(retry=True, max_attempts=2, wait_exponential_multiplier=250)

    def echo(self) -> str:
        self._call(lambda: self.client.search_for_studies(limit=1))
        return f"The PACS at {self.settings.base_url} answered a DICOMweb search (QIDO-RS)."

    def find(self, query: StudyQuery) -> list[SeriesRow]:
        rows: list[SeriesRow] = []
        for modality in query.modalities:
            filters = {key: value for key, value in query.matching_keys(modality).items() if value}
            found = self._call(lambda f=filters: self.client.search_for_series(  # type: ignore[misc]
                search_filters=f, fields=_FIELDS, limit=query.limit))
            rows.extend(SeriesRow.of(Dataset.from_json(item)) for item in found)
        return merge_rows(rows, query.limit)

    def retrieve(self, series: SeriesRow, on_instance: InstanceHandler, cancel: CancelToken) -> SeriesTransfer:
        instances: Iterator[Dataset] = self._call(
            lambda: self.client.iter_series(series.study_uid, series.series_uid))
        try:
            while not cancel.cancelled:
                dataset = self._call(lambda: next(instances, None))
                if dataset is None:
                    return SeriesTransfer(completed=True)
                on_instance(dataset, getattr(dataset, "file_meta", None))
            return SeriesTransfer(completed=False)
        finally:
            close = getattr(instances, "close", None)
            if close is not None:
                close()

    def _call(self, call: Callable[[], T]) -> T:
        try:
            return call()
        except requests.exceptions.SSLError:
            raise PacsUnreachable(
                f"The PACS at {self.settings.base_url} did not present a certificate this workstation trusts; "
                "check the CA certificate file in the connection's settings.") from None
        except (requests.exceptions.ConnectionError, requests.exceptions.Timeout):
            raise PacsUnreachable(
                f"The PACS at {self.settings.base_url} did not answer; it may be down, or the address may be "
                "wrong.") from None
        except requests.exceptions.HTTPError as error:
            status = error.response.status_code if error.response is not None else None
            log.debug("DICOMweb request failed with HTTP status %s", status)
            if status in (401, 403):
                raise PacsRefused("The PACS refused the credentials (user name, password or token); check them "
                                  "in the connection's settings.") from None
            if status == 404:
                raise PacsFailure("The PACS has no DICOMweb service at this address; check the base URL.") from None
            raise PacsFailure(f"The PACS reported an error (HTTP {status}).") from None
        except (requests.exceptions.RequestException, ValueError) as error:
            log.debug("DICOMweb answer unusable: %s", type(error).__name__)
            raise PacsFailure("The PACS sent an answer PneumoDesk could not read.") from None
