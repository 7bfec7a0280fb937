"""ROC curves (with operating points marked) and reliability diagrams of one or more models on the same images."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from PySide6.QtWidgets import QWidget

from pneumodesk.model.curves import ModelCurves

from .base import PALETTE, Chart, ChartValues, figure

if TYPE_CHECKING:
    import pyqtgraph as pg

#: (label, curves): "Current model", "Candidate", …; drawn in ``PALETTE`` order.
LabelledCurves = Sequence[tuple[str, ModelCurves]]


class _CurvesChart(Chart):
    def __init__(self, title: str, x_label: str, y_label: str, parent: QWidget | None = None) -> None:
        super().__init__(title, x_label, y_label, parent)
        self.curves: list[tuple[str, ModelCurves]] = []

    def set_curves(self, curves: LabelledCurves) -> None:
        self.curves = list(curves)
        self.redraw()

    def redraw(self) -> None:
        super().redraw()
        item = self.plot.getPlotItem()  # both axes are rates: always the unit square
        item.disableAutoRange()
        item.setRange(xRange=(0, 1), yRange=(0, 1), padding=0.03)

    def _diagonal(self, plot: pg.PlotWidget) -> None:
        plot.plot([0, 1], [0, 1], pen=self.muted_pen())


class RocChart(_CurvesChart):
    """True-positive rate against false-positive rate; each operating point is a marker on its model's curve."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("ROC curve", "1 − specificity (false-positive rate)", "sensitivity (true-positive rate)",
                         parent)

    def draw(self, plot: pg.PlotWidget) -> ChartValues:
        rows: list[tuple[str, ...]] = []
        if self.curves:
            self.add_legend((-10, -10))
        self._diagonal(plot)
        for index, (label, curves) in enumerate(self.curves):
            roc = curves.roc
            plot.plot(list(roc.false_positive_rate), list(roc.true_positive_rate), pen=self.pen(index),
                      name=f"{label} (AUC {roc.auc:.3f})")
            rows.append((label, "ROC AUC", figure(roc.auc), "", ""))
            for mark in curves.marks:
                plot.plot([mark.false_positive_rate], [mark.true_positive_rate], pen=None, symbol="o",
                          symbolSize=10, symbolBrush=PALETTE[index % len(PALETTE)], symbolPen=self.colours().text)
                rows.append((label, f"operating point {mark.name}", figure(mark.threshold),
                             figure(mark.true_positive_rate), figure(1.0 - mark.false_positive_rate)))
        return ChartValues(("Model", "Figure", "Value or threshold", "Sensitivity", "Specificity"), tuple(rows))


class ReliabilityChart(_CurvesChart):
    """Observed pneumonia rate against mean predicted probability per probability bin; the diagonal is perfect
    calibration. Empty bins are left out of the line."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Reliability diagram", "mean predicted probability", "observed pneumonia rate", parent)

    def draw(self, plot: pg.PlotWidget) -> ChartValues:
        rows: list[tuple[str, ...]] = []
        if self.curves:
            self.add_legend((10, 10))
        self._diagonal(plot)
        for index, (label, curves) in enumerate(self.curves):
            filled = [b for b in curves.reliability if b.count]
            plot.plot([b.mean_probability for b in filled], [b.observed_rate for b in filled], pen=self.pen(index),
                      symbol="o", symbolSize=7, symbolBrush=PALETTE[index % len(PALETTE)], name=label)
            rows += [(label, f"{b.low:.1f}–{b.high:.1f}", str(b.count), figure(b.mean_probability),
                      figure(b.observed_rate)) for b in curves.reliability]
        return ChartValues(("Model", "Probability bin", "Images", "Mean probability", "Observed rate"), tuple(rows))


__all__ = ["LabelledCurves", "ReliabilityChart", "RocChart"]
