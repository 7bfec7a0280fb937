"""Retrieving series into the cache: every instance screened, usable ones written, the rest listed with a reason.

Invariants: progress is reported after each instance, as (instances handled, instances expected or 0 when the PACS
did not say); a cancel takes effect between instances and keeps what was already written; a skipped instance is
never written to disk; nothing here logs a patient attribute.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pydicom.dataset import Dataset, FileMetaDataset

from .cache import PacsCache
from .cancel import CancelToken
from .peer import PacsPeer
from .query import SeriesRow
from .screening import skip_reason

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class SkippedInstance:
    where: str  # which series and instance, in words shown on screen (no patient attribute)
    reason: str


@dataclass
class RetrieveOutcome:
    files: list[Path] = field(default_factory=list)
    skipped: list[SkippedInstance] = field(default_factory=list)
    series_done: int = 0
    cancelled: bool = False

    @property
    def received(self) -> int:
        return len(self.files) + len(self.skipped)


def retrieve_to_cache(peer: PacsPeer, series: Sequence[SeriesRow], cache: PacsCache, cancel: CancelToken,
                      progress: Progress | None = None, keep: Iterable[Path] = ()) -> RetrieveOutcome:
    """Retrieve ``series`` into ``cache``, then prune it, keeping what was just written and the files in ``keep``."""
    outcome = RetrieveOutcome()
    expected = sum(row.instances or 0 for row in series)
    if any(row.instances is None for row in series):
        expected = 0

    for index, row in enumerate(series, start=1):
        if cancel.cancelled:
            outcome.cancelled = True
            break
        numbered = [0]

        def receive(dataset: Dataset, meta: FileMetaDataset | None, row: SeriesRow = row, index: int = index,
                    numbered: list[int] = numbered) -> None:
            numbered[0] += 1
            reason = skip_reason(dataset)
            if reason is None:
                outcome.files.append(cache.store(dataset, meta))
            else:
                label = row.description or f"{row.modality or 'unknown'} series"
                outcome.skipped.append(SkippedInstance(f"series {index} ({label}), instance {numbered[0]}", reason))
            if progress is not None:
                progress(outcome.received, max(expected, outcome.received) if expected else 0)

        transfer = peer.retrieve(row, receive, cancel)
        if transfer.not_sent:
            label = row.description or f"{row.modality or 'unknown'} series"
            outcome.skipped.append(SkippedInstance(
                f"series {index} ({label}), {transfer.not_sent} instance(s)",
                "The PACS could not send them: they are of a kind PneumoDesk does not take (not a radiograph)."))
        if not transfer.completed:
            outcome.cancelled = True
            break
        outcome.series_done += 1
    cache.prune(keep=[*outcome.files, *keep])
    return outcome
