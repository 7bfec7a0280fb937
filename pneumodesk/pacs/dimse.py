"""A classic DICOM PACS over DIMSE (C-ECHO, C-FIND, C-GET or C-MOVE) through ``pynetdicom``.

Invariants: one association per operation, closed (released or aborted) before the call returns; C-FIND searches
Study Root at SERIES level; C-GET asks the PACS to send the series back on the same association, proposing storage
contexts (with the SCP role) for radiographs and for the common non-image and multi-frame kinds, so those can be
listed as skipped rather than silently refused. C-MOVE instead runs a storage SCP on ``move_port`` for the length
of the retrieval only (the PACS must know ``local_ae`` at this host and port). With ``tls_ca_file`` every association
runs over TLS, the PACS's certificate verified against that CA and the host name (never switched off). A cancel
aborts the association after the instance in hand: no further instance is handed on. Failures become ``PacsError``
sentences.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING

from pydicom.dataset import Dataset

from .cancel import CancelToken
from .errors import PacsFailure, PacsRefused, PacsSettingsError, PacsUnreachable
from .peer import InstanceHandler, SeriesTransfer
from .query import RETURN_KEYS, SeriesRow, StudyQuery, merge_rows
from .quiet_logs import silence_library_logs
from .settings import DimseSettings, RetrieveMethod

if TYPE_CHECKING:
    from pynetdicom.association import Association
    from pynetdicom.events import Event, EventHandlerType
    from pynetdicom.pdu_primitives import SCP_SCU_RoleSelectionNegotiation

log = logging.getLogger(__name__)

#: Storage SOP classes a C-GET may send back: radiographs, and kinds that are then listed as skipped.
RECEIVED_STORAGE_CLASSES = (
    "1.2.840.10008.5.1.4.1.1.1",  # Computed Radiography Image Storage
    "1.2.840.10008.5.1.4.1.1.1.1",  # Digital X-Ray Image Storage - For Presentation
    "1.2.840.10008.5.1.4.1.1.1.1.1",  # Digital X-Ray Image Storage - For Processing
    "1.2.840.10008.5.1.4.1.1.7",  # Secondary Capture Image Storage
    "1.2.840.10008.5.1.4.1.1.7.2",  # Multi-frame Grayscale Byte Secondary Capture
    "1.2.840.10008.5.1.4.1.1.7.3",  # Multi-frame Grayscale Word Secondary Capture
    "1.2.840.10008.5.1.4.1.1.88.11",  # Basic Text SR
    "1.2.840.10008.5.1.4.1.1.88.22",  # Enhanced SR
    "1.2.840.10008.5.1.4.1.1.88.33",  # Comprehensive SR
    "1.2.840.10008.5.1.4.1.1.88.59",  # Key Object Selection
    "1.2.840.10008.5.1.4.1.1.11.1",  # Grayscale Softcopy Presentation State
    "1.2.840.10008.5.1.4.1.1.104.1",  # Encapsulated PDF
    "1.2.840.10008.5.1.4.1.1.2",  # CT Image Storage
    "1.2.840.10008.5.1.4.1.1.4",  # MR Image Storage
    "1.2.840.10008.5.1.4.1.1.6.1",  # Ultrasound Image Storage
    "1.2.840.10008.5.1.4.1.1.3.1",  # Ultrasound Multi-frame Image Storage
)
_PENDING = (0xFF00, 0xFF01)


class DimsePeer:
    def __init__(self, settings: DimseSettings) -> None:
        silence_library_logs()
        self.settings = settings

    @property
    def where(self) -> str:
        s = self.settings
        return f"{s.remote_ae} at {s.host}:{s.port}"

    def echo(self) -> str:
        from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

        assoc = self._associate([Verification])
        try:
            status = assoc.send_c_echo()
        finally:
            _close(assoc)
        self._check_final(status, "the echo")
        return f"The PACS {self.where} answered a DICOM echo (C-ECHO)."

    def find(self, query: StudyQuery) -> list[SeriesRow]:
        from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind  # type: ignore[attr-defined]

        rows: list[SeriesRow] = []
        assoc = self._associate([StudyRootQueryRetrieveInformationModelFind])
        try:
            for modality in query.modalities:
                identifier = Dataset()
                identifier.QueryRetrieveLevel = "SERIES"
                for keyword, value in query.matching_keys(modality).items():
                    setattr(identifier, keyword, value)
                for keyword in RETURN_KEYS:
                    setattr(identifier, keyword, "")
                for status, found in assoc.send_c_find(identifier, StudyRootQueryRetrieveInformationModelFind):
                    if _status(status) in _PENDING and found is not None:
                        rows.append(SeriesRow.of(found))
                        if len(rows) >= query.limit * len(query.modalities):
                            break
                    else:
                        self._check_final(status, "the search")
        finally:
            _close(assoc)
        return merge_rows(rows, query.limit)

    def retrieve(self, series: SeriesRow, on_instance: InstanceHandler, cancel: CancelToken) -> SeriesTransfer:
        faults: list[BaseException] = []

        def store(event: Event) -> int:
            if cancel.cancelled or faults:
                return 0xA700  # refused: the retrieval was cancelled or has already failed
            try:
                on_instance(event.dataset, event.file_meta)
            except BaseException as error:  # handed back to the retrieving thread
                faults.append(error)
                return 0xA700
            return 0x0000

        identifier = Dataset()
        identifier.QueryRetrieveLevel = "SERIES"
        identifier.StudyInstanceUID = series.study_uid
        identifier.SeriesInstanceUID = series.series_uid
        if self.settings.retrieve is RetrieveMethod.MOVE:
            transfer = self._move(identifier, store, cancel, faults)
        else:
            transfer = self._get(identifier, store, cancel, faults)
        if faults:
            raise faults[0]
        return SeriesTransfer(transfer.completed and not cancel.cancelled, transfer.not_sent)

    def _get(self, identifier: Dataset, store: Callable[[Event], int], cancel: CancelToken,
             faults: list[BaseException]) -> SeriesTransfer:
        from pynetdicom import build_role, evt
        from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelGet  # type: ignore[attr-defined]

        roles = [build_role(uid, scp_role=True) for uid in RECEIVED_STORAGE_CLASSES]
        assoc = self._associate([StudyRootQueryRetrieveInformationModelGet, *RECEIVED_STORAGE_CLASSES],
                                roles=roles, handlers=[(evt.EVT_C_STORE, store)])
        return self._follow(assoc, assoc.send_c_get(identifier, StudyRootQueryRetrieveInformationModelGet), cancel,
                            faults)

    def _move(self, identifier: Dataset, store: Callable[[Event], int], cancel: CancelToken,
              faults: list[BaseException]) -> SeriesTransfer:
        from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, evt
        from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelMove  # type: ignore[attr-defined]

        s = self.settings
        receiver = AE(ae_title=s.local_ae)
        receiver.acse_timeout = receiver.dimse_timeout = receiver.network_timeout = s.timeout_s
        for uid in RECEIVED_STORAGE_CLASSES:
            receiver.add_supported_context(uid, ALL_TRANSFER_SYNTAXES)
        try:
            server = receiver.start_server(("", s.move_port), block=False, evt_handlers=[(evt.EVT_C_STORE, store)])
        except OSError:
            raise PacsSettingsError(f"This workstation cannot receive images on port {s.move_port} (it is in use or "
                                    "not allowed); choose another port for C-MOVE.") from None
        assert server is not None  # start_server(block=False) returns the running server
        try:
            assoc = self._associate([StudyRootQueryRetrieveInformationModelMove])
            responses = assoc.send_c_move(identifier, s.local_ae, StudyRootQueryRetrieveInformationModelMove)
            return self._follow(assoc, responses, cancel, faults)
        finally:
            server.shutdown()

    def _follow(self, assoc: Association, responses: Iterator[tuple[Dataset, Dataset | None]], cancel: CancelToken,
                faults: list[BaseException]) -> SeriesTransfer:
        """Read the retrieval's responses; abort at a cancel or a fault (not completed), else check the final status
        and count the sub-operations the PACS reported as failed (instances it could not send)."""
        not_sent = 0
        try:
            for status, _ in responses:
                if cancel.cancelled or faults:
                    assoc.abort()
                    return SeriesTransfer(completed=False)
                if _status(status) is None and self.settings.retrieve is RetrieveMethod.MOVE:
                    raise PacsRefused(
                        f"The PACS {self.where} broke off the C-MOVE: it may not accept this workstation "
                        f"({self.settings.local_ae}) as a C-MOVE destination, or cannot reach it on port "
                        f"{self.settings.move_port}; ask the PACS administrator to register it.")
                if _status(status) not in _PENDING:
                    self._check_final(status, "the retrieval", warnings_ok=True)
                    not_sent = int(status.get("NumberOfFailedSuboperations") or 0)
        finally:
            _close(assoc)
        return SeriesTransfer(completed=True, not_sent=not_sent)

    def _associate(self, contexts: Sequence[str], roles: Sequence[SCP_SCU_RoleSelectionNegotiation] = (),
                   handlers: Sequence[EventHandlerType] = ()) -> Association:
        from pynetdicom import AE, evt

        opened: list[bool] = []

        def connected(_event: Event) -> None:
            opened.append(True)

        s = self.settings
        ae = AE(ae_title=s.local_ae)
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = s.timeout_s
        ae.connection_timeout = min(s.timeout_s, 10.0)
        for abstract_syntax in contexts:
            ae.add_requested_context(abstract_syntax)
        tls_args: tuple[ssl.SSLContext, str] | None = None
        if s.tls_ca_file:
            tls_args = (ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=s.tls_ca_file), s.host)
        assoc = ae.associate(s.host, s.port, ae_title=s.remote_ae, ext_neg=list(roles) or None,
                             evt_handlers=[*handlers, (evt.EVT_CONN_OPEN, connected)], tls_args=tls_args)
        if assoc.is_established:
            return assoc
        if s.tls_ca_file and not assoc.is_rejected:
            raise PacsUnreachable(f"No TLS connection could be made to the PACS {self.where}: it may be down, not "
                                  "speak TLS on this port, or present a certificate that the configured CA did not "
                                  "sign for this host name.")
        if not opened:
            raise PacsUnreachable(f"The PACS {self.where} did not answer; it may be down, or the host or port may "
                                  "be wrong.")
        if assoc.is_rejected:
            raise PacsRefused(f"The PACS {self.where} refused the association: it does not accept this "
                              f"workstation's AE title ({s.local_ae}) or the called AE title; ask the PACS "
                              "administrator to register it.")
        if assoc.is_aborted:
            raise PacsRefused(f"The PACS {self.where} broke off the association; check both AE titles.")
        raise PacsUnreachable(f"The PACS {self.where} did not answer; it may be down, or the host or port may be "
                              "wrong.")

    def _check_final(self, status: Dataset, what: str, warnings_ok: bool = False) -> None:
        code = _status(status)
        if code is None:
            raise PacsUnreachable(f"The PACS {self.where} stopped answering during {what} (timed out or "
                                  "connection lost).")
        if code == 0x0000 or (warnings_ok and code in (0xB000, 0x0001)):
            return
        if code == 0xFE00:
            return  # cancelled at our request
        if code == 0xA801:
            raise PacsFailure(f"The PACS {self.where} does not know this workstation ({self.settings.local_ae}) as a "
                              "C-MOVE destination; ask the PACS administrator to register its AE title, address "
                              "and port.")
        log.debug("DIMSE %s failed with status 0x%04X", what, code)
        raise PacsFailure(f"The PACS {self.where} reported a failure during {what} (status 0x{code:04X}).")


def _status(status: Dataset) -> int | None:
    value = status.get("Status")
    return None if value is None else int(value)


def _close(assoc: Association) -> None:
    if assoc.is_established:
        assoc.release()
