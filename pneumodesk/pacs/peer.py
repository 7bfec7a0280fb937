"""``PacsPeer``: what both protocols offer PneumoDesk — echo, a series-level search, and retrieving a series one
instance at a time (so a cancel takes effect between instances)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from pydicom.dataset import Dataset, FileMetaDataset

from .cancel import CancelToken
from .query import SeriesRow, StudyQuery

#: Called once per instance received, in the retrieving thread; may raise to stop the retrieval.
InstanceHandler = Callable[[Dataset, FileMetaDataset | None], None]


@dataclass(frozen=True)
class SeriesTransfer:
    """How one series' retrieval ended: ``completed`` False when a cancel stopped it; ``not_sent`` counts instances
    the PACS said it could not send (over DIMSE: of a kind this workstation did not offer to take)."""

    completed: bool
    not_sent: int = 0


class PacsPeer(Protocol):
    def echo(self) -> str:
        """A plain sentence saying the PACS answered; raises ``PacsError`` saying why not."""
        ...

    def find(self, query: StudyQuery) -> list[SeriesRow]:
        """Series matching ``query`` (one search per modality, merged)."""
        ...

    def retrieve(self, series: SeriesRow, on_instance: InstanceHandler, cancel: CancelToken) -> SeriesTransfer:
        """Hand every instance of ``series`` to ``on_instance``; not completed when ``cancel`` stopped it early."""
        ...
