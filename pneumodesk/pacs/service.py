"""``PacsService``: the front door for the CLI and the GUI — connections, test, search and retrieve, each checked
and audited in the node.

Audit invariants: a search records the connection, which filters were used (names only), the modalities and the
number of series found — never a value typed or returned; a retrieval records series, instances received, written
and skipped, and whether it was cancelled. A failed operation is audited as ``failed`` with its plain reason
(which never carries a patient attribute). Searching and retrieving need ``predict``.

Cache invariant: a cached image that carries a clinician's confirmed reading (normal or pneumonia) is a Confirmed
case and is never pruned by a retrieval (it may hold the cache above its size cap); clearing the cache at sign-out
still removes it, and the Confirmed cases dataset then refuses it with that reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pneumodesk.node.audit import FAILED
from pneumodesk.node.homes import is_machine_home
from pneumodesk.node.permissions import Permission
from pneumodesk.node.service import NodeService
from pneumodesk.node.session import UserSession

from .cache import CACHE_FOLDER, CacheLimits, PacsCache
from .cancel import CancelToken
from .connections import ADMIN, PacsConnections
from .credentials import PacsSecrets
from .errors import PacsError
from .peer import PacsPeer
from .query import SeriesRow, StudyQuery
from .retrieve import Progress, RetrieveOutcome, retrieve_to_cache
from .settings import PacsConnection, Protocol


class PacsService:
    def __init__(self, node: NodeService, secrets: PacsSecrets | None = None, cache_folder: Path | None = None,
                 limits: CacheLimits | None = None) -> None:
        self.node = node
        self.secrets = secrets or PacsSecrets()
        self.connections = PacsConnections(node.store, node.accounts, node.audit, self.secrets)
        self.cache = PacsCache(cache_folder or node.home / CACHE_FOLDER, limits, shared=is_machine_home(node.home))

    def confirmed_in_cache(self) -> list[Path]:
        """The cached images that carry a confirmed reading (Confirmed cases): kept when the cache is pruned."""
        folder = self.cache.folder.resolve()
        return [r.path for r in self.node.readings.confirmed() if r.path.parent == folder]

    def peer(self, connection: PacsConnection) -> PacsPeer:
        if connection.protocol is Protocol.DICOMWEB and connection.dicomweb is not None:
            from .dicomweb import DicomWebPeer

            return DicomWebPeer(connection.dicomweb, self.secrets.get(connection.name))
        if connection.dimse is not None:
            from .dimse import DimsePeer

            return DimsePeer(connection.dimse)
        raise PacsError(f"The PACS connection {connection.name!r} is incomplete; an administrator must fix it.")

    def test(self, actor: UserSession, name: str) -> str:
        """Echo the PACS (C-ECHO or a QIDO search for one study); the plain answer, or ``PacsError``."""
        self.node.accounts.require(actor, ADMIN, "pacs_connection")
        connection = self.connections.get(actor, name)
        try:
            answer = self.peer(connection).echo()
        except PacsError as error:
            self.node.audit.append(actor.username, "pacs_echo", name, FAILED, details={"reason": str(error)[:200]})
            raise
        self.node.audit.append(actor.username, "pacs_echo", name)
        return answer

    def query(self, actor: UserSession, name: str, query: StudyQuery) -> list[SeriesRow]:
        self.node.accounts.require(actor, Permission.PREDICT, "pacs_query")
        query = query.validated()
        connection = self.connections.get(actor, name)
        details: dict[str, str | int | float | bool | None] = {
            "fields": ",".join(query.used_fields()), "modalities": ",".join(query.modalities)}
        try:
            rows = self.peer(connection).find(query)
        except PacsError as error:
            self.node.audit.append(actor.username, "pacs_query", name, FAILED,
                                   details={**details, "reason": str(error)[:200]})
            raise
        self.node.audit.append(actor.username, "pacs_query", name, details={**details, "series": len(rows)})
        return rows

    def retrieve(self, actor: UserSession, name: str, series: Sequence[SeriesRow], cancel: CancelToken | None = None,
                 progress: Progress | None = None) -> RetrieveOutcome:
        self.node.accounts.require(actor, Permission.PREDICT, "pacs_retrieve")
        connection = self.connections.get(actor, name)
        cancel = cancel or CancelToken()
        try:
            outcome = retrieve_to_cache(self.peer(connection), series, self.cache, cancel, progress,
                                        keep=self.confirmed_in_cache())
        except PacsError as error:
            self.node.audit.append(actor.username, "pacs_retrieve", name, FAILED,
                                   details={"series": len(series), "reason": str(error)[:200]})
            raise
        self.node.audit.append(actor.username, "pacs_retrieve", name, details={
            "series": len(series), "series_done": outcome.series_done, "received": outcome.received,
            "written": len(outcome.files), "skipped": len(outcome.skipped), "cancelled": outcome.cancelled})
        return outcome
