"""The Training page's picture of the privacy ledger: ε recorded over time per dataset against the cap, with the
level that spending plus what approved plans still hold reaches (figures from ``pneumodesk.node.privacy_history``)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence

from PySide6.QtWidgets import QWidget

from pneumodesk.node.privacy_history import BudgetHistory

from ..charts import LineChart, LineSeries
from ..charts.lines import ReferenceLine


class BudgetChart(LineChart):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Privacy budget over time", "time", "ε", time_axis=True, digits=2, parent=parent)
        self.histories: list[BudgetHistory] = []

    def show_histories(self, histories: Sequence[BudgetHistory], names: Mapping[int, str]) -> None:
        """One staircase per dataset with entries; one dashed line per dataset at spent + held; the cap once."""
        self.histories = list(histories)
        series, references = [], []
        for h in self.histories:
            name = names.get(h.dataset_id, f"dataset {h.dataset_id}")
            if h.times:
                series.append(LineSeries(name, tuple(_seconds(t) for t in h.times), h.running_total, step=True))
            if h.held > 0 or h.times:
                references.append(ReferenceLine(f"{name}: spent + held by approved plans", h.spent + h.held,
                                                colour_of=len(series) - 1 if h.times else None))
        if self.histories:
            references.append(ReferenceLine("cap per dataset", max(h.cap for h in self.histories)))
        self.set_series(series, references)


def _seconds(time: dt.datetime) -> float:
    return (time if time.tzinfo else time.replace(tzinfo=dt.UTC)).timestamp()


__all__ = ["BudgetChart"]
