"""``PacsPeer``: what both protocols offer PneumoDesk — echo, a series-level search, and retrieving a series one
instance at a time (so a cancel takes effect between instances)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from pydicom.dataset import Dataset, FileMetaDataset

from .cancel import CancelToken
from .query import SeriesRow, StudyQuery

#: Called once per instance received, in the retrieving thread; may raise to stop the retrieval.
InstanceHandler = Callable[[Dataset, FileMetaDataset | None], None]


class PacsPeer(Protocol):
    def echo(self) -> str:
        """A plain sentence saying the PACS answered; raises ``PacsError`` saying why not."""
        ...

    def find(self, query: StudyQuery) -> list[SeriesRow]:
        """Series matching ``query`` (one search per modality, merged)."""
        ...

    def retrieve(self, series: SeriesRow, on_instance: InstanceHandler, cancel: CancelToken) -> bool:
        """Hand every instance of ``series`` to ``on_instance``; False when ``cancel`` stopped it early."""
        ...
