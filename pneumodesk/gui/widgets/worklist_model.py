"""The worklist: one row per image file (``WorklistModel``), and its sorted, filtered view (``WorklistFilter``).

Every cell's text, colour and sort key is stored in C++ (``QStandardItem``), and the proxy sorts and filters with
its built-in C++ rules. Painting, sorting and filtering therefore never call back into Python, so the window keeps
drawing while the worker threads hold the GIL (Python callbacks per cell made repaints stall for tens of ms).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QSortFilterProxyModel, Qt
from PySide6.QtGui import QColor, QStandardItem, QStandardItemModel

from pneumodesk.inference.histogram import HISTOGRAM_BINS, bin_index

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from pneumodesk.inference import Prediction

SORT_ROLE = Qt.ItemDataRole.UserRole + 1
KIND_ROLE = Qt.ItemDataRole.UserRole + 2  # on the File column: "positive", "negative", "error" or "pending"
#: On the File column: "<kind>|b<probability bin, two digits>" ("b--" before a result); what the proxy filters on.
FILTER_ROLE = Qt.ItemDataRole.UserRole + 3
_RIGHT = int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
_LEFT = int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)


class Status(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    ERROR = "error"
    CANCELLED = "cancelled"


class Column(IntEnum):
    FILE = 0
    PROBABILITY = 1
    DECISION = 2
    STATUS = 3
    VERDICT = 4


HEADERS = {
    Column.FILE: "File",
    Column.PROBABILITY: "Probability",
    Column.DECISION: "Decision",
    Column.STATUS: "Status",
    Column.VERDICT: "Verdict",
}


@dataclass
class WorklistItem:
    """One image. ``prediction`` is set exactly when ``status`` is DONE, ``error`` exactly when it is ERROR."""

    path: Path
    status: Status = Status.QUEUED
    prediction: Prediction | None = None
    error: str | None = None
    sha256: str | None = None
    verdict: str | None = None
    outside_intended_use: bool = False  # read, but refused: ``error`` says why, and there is no probability

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def kind(self) -> str:
        if self.prediction is not None:
            return "positive" if self.prediction.is_pneumonia else "negative"
        return "error" if self.status is Status.ERROR else "pending"


class WorklistModel(QStandardItemModel):
    """Rows are only ever appended, never removed or moved, so a row number stays valid for a batch's whole life.

    ``entry(row)`` is the Python record; the cells are a rendering of it, rewritten by ``_render`` on every change.
    """

    def __init__(self, positive_colour: str = "#ff8a65", negative_colour: str = "#7fd1a8", error_colour: str = "#f66"):
        super().__init__(0, len(Column))
        self.setHorizontalHeaderLabels([HEADERS[c] for c in Column])
        self._entries: list[WorklistItem] = []
        self.set_colours(positive_colour, negative_colour, error_colour)

    def set_colours(self, positive: str, negative: str, error: str) -> None:
        self._colours = {"positive": QColor(positive), "negative": QColor(negative), "error": QColor(error)}
        for row in range(len(self._entries)):
            self._render(row)

    # --- worklist operations ---
    def entries(self) -> list[WorklistItem]:
        return list(self._entries)

    def entry(self, row: int) -> WorklistItem:
        return self._entries[row]

    def add_paths(self, paths: Iterable[Path]) -> list[int]:
        """Append one queued row per path; returns the new row numbers."""
        rows = []
        for path in paths:
            self._entries.append(WorklistItem(Path(path)))
            cells = [QStandardItem() for _ in Column]
            for cell in cells:
                cell.setEditable(False)
            self.appendRow(cells)
            rows.append(len(self._entries) - 1)
            self._render(rows[-1])
        return rows

    def set_status(self, rows: Iterable[int], status: Status) -> None:
        for row in rows:
            self._entries[row].status = status
            self._render(row)

    def set_result(
        self, row: int, prediction: Prediction | None, error: str | None, sha256: str | None, verdict: str | None,
        outside_intended_use: bool = False,
    ) -> None:
        entry = self._entries[row]
        entry.prediction, entry.error, entry.sha256, entry.verdict = prediction, error, sha256, verdict
        entry.outside_intended_use = outside_intended_use and prediction is None
        entry.status = Status.DONE if prediction is not None else Status.ERROR
        self._render(row)

    def set_verdict(self, row: int, verdict: str | None) -> None:
        self._entries[row].verdict = verdict
        self._render(row)

    def redecide(self, decide: Callable[[float], Prediction]) -> None:
        """Re-apply the decision rule (e.g. after the operating point changed) to every predicted row."""
        for row, entry in enumerate(self._entries):
            if entry.prediction is not None:
                entry.prediction = decide(entry.prediction.probability)
                self._render(row)

    # --- rendering into cells ---
    def _render(self, row: int) -> None:
        entry = self._entries[row]
        for column in Column:
            self.setItemData(self.index(row, column), self._cell(entry, column))

    def _cell(self, entry: WorklistItem, column: Column) -> dict[int, Any]:
        p = entry.prediction
        probability = p.probability if p else -1.0  # unpredicted rows sort after every result
        tip = entry.error or str(entry.path)
        roles: dict[int, Any] = {Qt.ItemDataRole.ToolTipRole: tip, Qt.ItemDataRole.TextAlignmentRole: _LEFT}
        if column == Column.FILE:
            probability_bin = f"b{bin_index(p.probability, HISTOGRAM_BINS):02d}" if p else "b--"
            roles |= {Qt.ItemDataRole.DisplayRole: entry.name, SORT_ROLE: entry.name.lower(), KIND_ROLE: entry.kind,
                      FILTER_ROLE: f"{entry.kind}|{probability_bin}"}
        elif column == Column.PROBABILITY:
            text = f"{p.probability * 100:.1f} %" if p else ""
            roles |= {Qt.ItemDataRole.DisplayRole: text, SORT_ROLE: probability,
                      Qt.ItemDataRole.TextAlignmentRole: _RIGHT}
        elif column == Column.DECISION:
            text = ("Pneumonia" if p.is_pneumonia else "Normal") if p else (entry.error or "")
            key = (1.0 if p.is_pneumonia else 0.0) + probability if p else -1.0
            roles |= {Qt.ItemDataRole.DisplayRole: text, SORT_ROLE: key}
            colour = self._colours["error"] if entry.error else self._colours[entry.kind] if p else None
            if colour is not None:
                roles[Qt.ItemDataRole.ForegroundRole] = colour
        elif column == Column.STATUS:
            roles |= {Qt.ItemDataRole.DisplayRole: entry.status.value, SORT_ROLE: entry.status.value}
            if entry.status is Status.ERROR:
                roles[Qt.ItemDataRole.ForegroundRole] = self._colours["error"]
        else:
            roles |= {Qt.ItemDataRole.DisplayRole: entry.verdict or "", SORT_ROLE: entry.verdict or ""}
        return roles


class FilterMode(StrEnum):
    ALL = "all"
    POSITIVES = "positives"
    ERRORS = "errors"


_KINDS = {FilterMode.ALL: "[a-z]+", FilterMode.POSITIVES: "positive", FilterMode.ERRORS: "error"}


class WorklistFilter(QSortFilterProxyModel):
    """Sorted by ``SORT_ROLE`` (default: highest probability first, unpredicted rows last); filtered by mode and,
    optionally, by probability bin (``inference.histogram``'s bins, the Predict page's histogram).

    Dynamic: a changed row moves to its place at once (a C++ binary search, no Python per comparison).
    """

    def __init__(self, source: WorklistModel) -> None:
        super().__init__()
        self.setSourceModel(source)
        self.setSortRole(SORT_ROLE)
        self.setFilterRole(FILTER_ROLE)
        self.setFilterKeyColumn(Column.FILE)
        self.setDynamicSortFilter(True)
        self._mode = FilterMode.ALL
        self._bin = -1
        self.sort(Column.PROBABILITY, Qt.SortOrder.DescendingOrder)

    @property
    def mode(self) -> FilterMode:
        return self._mode

    def set_mode(self, mode: FilterMode) -> None:
        self._mode = FilterMode(mode)
        self._apply()

    @property
    def probability_bin(self) -> int:
        """The probability bin shown (-1: every row)."""
        return self._bin

    def set_probability_bin(self, index: int) -> None:
        """Show only rows whose probability is in bin ``index`` of ``HISTOGRAM_BINS`` (-1: no such limit)."""
        self._bin = index if 0 <= index < HISTOGRAM_BINS else -1
        self._apply()

    def _apply(self) -> None:
        if self._mode is FilterMode.ALL and self._bin < 0:
            self.setFilterRegularExpression("")
            return
        probability_bin = r"b(\d\d|--)" if self._bin < 0 else f"b{self._bin:02d}"
        self.setFilterRegularExpression(f"^{_KINDS[self._mode]}\\|{probability_bin}$")

    def source_row(self, proxy_row: int) -> int:
        return self.mapToSource(self.index(proxy_row, 0)).row()

    def proxy_row(self, source_row: int) -> int:
        """The visible row of a source row, or -1 when it is filtered out."""
        return self.mapFromSource(self.sourceModel().index(source_row, 0)).row()
