"""The worklist's probability histogram with the operating point's threshold; clicking a bar picks that bin."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QPointF, Signal
from PySide6.QtWidgets import QWidget

from pneumodesk.inference.histogram import ProbabilityHistogram, probability_histogram

from .base import PALETTE, Chart, ChartValues

if TYPE_CHECKING:
    import pyqtgraph as pg


class HistogramChart(Chart):
    """Emits ``bin_selected(index)`` when a bar is clicked (clicking it again, or outside the bars, emits -1: no
    bin), or — from the keyboard — when a bin's row of the Values table is activated (Enter). The chosen bin is drawn
    in the bars' colour, the others muted."""

    bin_selected = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        self.histogram = probability_histogram((), None)
        self.selected_bin = -1
        super().__init__("Probabilities in the worklist", "probability of pneumonia", "images", parent)
        self.placeholder.setMinimumHeight(120)
        self.table.cellActivated.connect(self._row_activated)

    def _row_activated(self, row: int, _column: int) -> None:
        if row < self.histogram.bins:
            self.select_bin(-1 if row == self.selected_bin else row)

    def plot_built(self, plot: pg.PlotWidget) -> None:
        plot.scene().sigMouseClicked.connect(self._clicked)

    def set_histogram(self, histogram: ProbabilityHistogram) -> None:
        self.histogram = histogram
        if self.selected_bin >= histogram.bins:
            self.selected_bin = -1
        self.redraw()

    def select_bin(self, index: int) -> None:
        """Choose bin ``index`` (-1: none) and say so."""
        self.selected_bin = index if 0 <= index < self.histogram.bins else -1
        self.redraw()
        self.bin_selected.emit(self.selected_bin)

    def bin_at(self, probability: float) -> int:
        return self.histogram.bin_of(probability) if 0.0 <= probability <= 1.0 else -1

    def scene_position(self, probability: float, count: float) -> QPointF:
        """Where (probability, count) is in the plot widget's coordinates (for tests that click a bar)."""
        scene = self.plot.getPlotItem().vb.mapViewToScene(QPointF(probability, count))
        return QPointF(self.plot.mapFromScene(scene))

    def _clicked(self, event: object) -> None:
        position = self.plot.getPlotItem().vb.mapSceneToView(event.scenePos())  # type: ignore[attr-defined]
        index = self.bin_at(position.x())
        if index >= 0 and not 0 <= position.y() <= max(self.histogram.counts[index], 0.5):
            index = -1
        self.select_bin(-1 if index == self.selected_bin else index)

    def draw(self, plot: pg.PlotWidget) -> ChartValues:
        import pyqtgraph as pg

        h = self.histogram
        colours = self.colours()
        lows = [h.edges[i] for i in range(h.bins)]
        highs = [h.edges[i + 1] for i in range(h.bins)]
        unselected = PALETTE[0] if self.selected_bin < 0 else colours.border  # the chosen bin stands out
        brushes = [PALETTE[0] if i == self.selected_bin else unselected for i in range(h.bins)]
        plot.addItem(pg.BarGraphItem(x0=lows, x1=highs, height=list(h.counts), brushes=brushes,
                                     pen=pg.mkPen(colours.base)))
        plot.getPlotItem().setXRange(0, 1, padding=0.01)
        plot.getPlotItem().setYRange(0, max(max(h.counts, default=0), 1), padding=0.05)
        rows = [(f"{lo:.1f}–{hi:.1f}", str(n), "yes" if i == self.selected_bin else "")
                for i, (lo, hi, n) in enumerate(zip(lows, highs, h.counts, strict=True))]
        if h.threshold is not None:
            plot.addItem(pg.InfiniteLine(pos=h.threshold, angle=90, pen=pg.mkPen(colours.positive, width=2),
                                         label=f"threshold {h.threshold:.3f}",
                                         labelOpts={"position": 0.9, "color": colours.positive}))
            rows.append(("operating point threshold", f"{h.threshold:.3f}", ""))
        return ChartValues(("Probability bin", "Images", "Shown in the worklist"), tuple(rows))


__all__ = ["HistogramChart"]
