"""Line charts over rounds or time (with reference lines such as a cap) and bar charts of one figure per label."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from PySide6.QtWidgets import QWidget

from .base import PALETTE, Chart, ChartValues, figure

if TYPE_CHECKING:
    import pyqtgraph as pg


@dataclass(frozen=True)
class LineSeries:
    """One line: ``x`` are numbers (rounds) or, on a time chart, POSIX seconds; ``step`` draws a staircase (a total
    that changes only when something is recorded)."""

    name: str
    x: tuple[float, ...]
    y: tuple[float, ...]
    step: bool = False


@dataclass(frozen=True)
class ReferenceLine:
    """A horizontal line across the chart (a cap, a budget held), in its series' colour when it has one."""

    name: str
    y: float
    colour_of: int | None = None  # index of the series it belongs to; None: muted


class LineChart(Chart):
    def __init__(self, title: str, x_label: str, y_label: str, *, time_axis: bool = False, digits: int = 3,
                 whole_x: bool = False, y_range: tuple[float, float] | None = None,
                 parent: QWidget | None = None) -> None:
        """``whole_x``: ticks only at the points' x (rounds); ``y_range``: fixed (ROC AUC: 0.5–1), else automatic."""
        self.time_axis = time_axis
        self.whole_x = whole_x
        self.y_range = y_range
        self.digits = digits
        self.series: list[LineSeries] = []
        self.references: list[ReferenceLine] = []
        super().__init__(title, x_label, y_label, parent)

    def plot_built(self, plot: pg.PlotWidget) -> None:
        if self.time_axis:
            import pyqtgraph as pg

            plot.getPlotItem().setAxisItems({"bottom": pg.DateAxisItem()})

    def set_series(self, series: Sequence[LineSeries], references: Sequence[ReferenceLine] = ()) -> None:
        self.series, self.references = list(series), list(references)
        self.redraw()

    def _x_text(self, x: float) -> str:
        if self.time_axis:
            return dt.datetime.fromtimestamp(x).strftime("%Y-%m-%d %H:%M")
        return f"{x:g}"

    def draw(self, plot: pg.PlotWidget) -> ChartValues:
        import pyqtgraph as pg

        rows: list[tuple[str, ...]] = []
        if self.series or self.references:
            self.add_legend((-10, -10))  # bottom right: reference lines (caps) run along the top
        for index, s in enumerate(self.series):
            colour = PALETTE[index % len(PALETTE)]
            if s.step and s.x:
                xs = [s.x[0]] + [x for x in s.x[1:] for _ in (0, 1)]  # each value holds until the next one
                ys = [y for y in s.y[:-1] for _ in (0, 1)] + [s.y[-1]]
                plot.plot(xs, ys, pen=self.pen(index), name=s.name)
                plot.plot(list(s.x), list(s.y), pen=None, symbol="o", symbolSize=6, symbolBrush=colour)
            else:
                plot.plot(list(s.x), list(s.y), pen=self.pen(index), symbol="o", symbolSize=7, symbolBrush=colour,
                          name=s.name)
            rows += [(s.name, self._x_text(x), figure(y, self.digits)) for x, y in zip(s.x, s.y, strict=True)]
        for ref in self.references:
            pen = self.muted_pen() if ref.colour_of is None else self.pen(ref.colour_of, 1.5, dashed=True)
            line = pg.InfiniteLine(pos=ref.y, angle=0, pen=pen, label=ref.name,
                                   labelOpts={"position": 0.01, "anchors": [(0, 1), (0, 1)],
                                              "color": self.colours().muted})
            plot.addItem(line)
            rows.append((ref.name, "", figure(ref.y, self.digits)))
        item = plot.getPlotItem()
        if self.whole_x:
            xs = sorted({x for s in self.series for x in s.x})
            item.getAxis("bottom").setTicks([[(x, f"{x:g}") for x in xs]] if xs else None)
        if self.y_range is not None:
            low = min([self.y_range[0], *(y for s in self.series for y in s.y)])
            item.setYRange(low, self.y_range[1], padding=0.05)
        elif self.references:  # room above the highest line for its label
            top = max([r.y for r in self.references] + [y for s in self.series for y in s.y])
            item.setYRange(0, top * 1.15, padding=0)
        return ChartValues(("Series", self.x_label, self.y_label), tuple(rows))


class BarChart(Chart):
    """One bar per label (e.g. bytes sent per round)."""

    def __init__(self, title: str, x_label: str, y_label: str, *, y_units: str = "",
                 parent: QWidget | None = None) -> None:
        self.labels: list[str] = []
        self.heights: list[float] = []
        super().__init__(title, x_label, y_label, parent, y_units=y_units)

    def set_bars(self, labels: Sequence[str], heights: Sequence[float]) -> None:
        self.labels, self.heights = list(labels), [float(h) for h in heights]
        self.redraw()

    def draw(self, plot: pg.PlotWidget) -> ChartValues:
        import pyqtgraph as pg

        if self.heights:
            xs = list(range(len(self.heights)))
            plot.addItem(pg.BarGraphItem(x=xs, height=self.heights, width=0.7, brush=PALETTE[0]))
            plot.getPlotItem().getAxis("bottom").setTicks([list(zip(xs, self.labels, strict=True))])
        rows = tuple((label, f"{height:,.0f}") for label, height in zip(self.labels, self.heights, strict=True))
        return ChartValues((self.x_label, self.y_label), rows)


__all__ = ["BarChart", "LineChart", "LineSeries", "ReferenceLine"]
