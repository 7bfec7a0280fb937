"""``Chart``: a titled pyqtgraph plot with its values as a table beside it (the text alternative), restyled when the
app's theme changes.

Invariants: what a chart draws and what its table lists come from the same ``ChartValues``, set in one call
(``show_values``); tests read ``values`` — the data behind the picture — never pixels. The plot (and pyqtgraph,
about half a second to import) is built on the first ``redraw``, never at start-up: pages draw when they get data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import shiboken6
from PySide6.QtCore import QEvent, Qt, QTimer
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QStackedWidget,
    QTableWidget,
    QTableWidgetItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ..theme import Colours, colours

if TYPE_CHECKING:
    import pyqtgraph as pg

#: Line colours, in order, readable on both themes (current model first, candidate second).
PALETTE = ("#4f9de0", "#f2a33a", "#9b7fe6", "#5cc28f", "#e8657a")


@dataclass(frozen=True)
class ChartValues:
    """The text alternative: column headings and one row of words per value drawn."""

    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...] = field(default_factory=tuple)

    def as_text(self) -> str:
        lines = [", ".join(self.columns)] + [", ".join(row) for row in self.rows]
        return "\n".join(lines)


def current_colours() -> Colours:
    app = QApplication.instance()
    theme = app.property("pneumodesk_theme") if app is not None else None
    return colours(str(theme) if theme else "dark")


class Chart(QWidget):
    """Subclasses draw in ``draw(plot)`` from their own figures and return the matching ``ChartValues``."""

    def __init__(self, title: str, x_label: str = "", y_label: str = "", parent: QWidget | None = None, *,
                 y_units: str = "") -> None:
        """``y_units`` (e.g. "B"): the y axis then scales with SI prefixes (kB, MB)."""
        super().__init__(parent)
        self.y_units = y_units
        self.title = title
        self.values = ChartValues(())
        self.setAccessibleName(title)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        header = QHBoxLayout()
        self.title_label = QLabel(f"<b>{title}</b>")
        header.addWidget(self.title_label, 1)
        self.table_button = QToolButton()
        self.table_button.setText("Values")
        self.table_button.setCheckable(True)
        self.table_button.setToolTip("Show the chart's values as a table")
        self.table_button.setAccessibleName(f"Show the values of {title} as a table")
        self.table_button.toggled.connect(self._show_table)
        header.addWidget(self.table_button)
        layout.addLayout(header)
        self.stack = QStackedWidget()
        self._plot: pg.PlotWidget | None = None
        self.placeholder = QWidget()  # where the plot goes once there is something to draw
        self.placeholder.setMinimumHeight(160)
        self.x_label, self.y_label = x_label, y_label
        self.table = QTableWidget(0, 0)
        self.table.setAccessibleName(f"{title}: values")
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.stack.addWidget(self.placeholder)
        self.stack.addWidget(self.table)
        layout.addWidget(self.stack, 1)

    @property
    def plot(self) -> pg.PlotWidget:
        """The pyqtgraph plot, built (and pyqtgraph imported) on first use."""
        if self._plot is None:
            import pyqtgraph as pg

            plot = pg.PlotWidget()
            plot.setMenuEnabled(False)
            plot.setMouseEnabled(x=False, y=False)
            plot.hideButtons()
            plot.setMinimumHeight(self.placeholder.minimumHeight())
            plot.setAccessibleName(self.title)
            self.stack.insertWidget(0, plot)
            self.stack.removeWidget(self.placeholder)
            self.placeholder.deleteLater()
            self._plot = plot
            if not self.table_button.isChecked():
                self.stack.setCurrentWidget(plot)
            self.plot_built(plot)
            self._style()
        return self._plot

    def plot_built(self, plot: pg.PlotWidget) -> None:
        """What a chart sets up on its plot once it exists (axes, click handlers); nothing by default."""

    # --- drawing ---
    def redraw(self) -> None:
        """Clear and draw the current figures again (after new figures or a theme change)."""
        item = self.plot.getPlotItem()
        item.clear()
        if item.legend is not None:
            item.legend.clear()
        self.show_values(self.draw(self.plot))

    def draw(self, plot: pg.PlotWidget) -> ChartValues:
        return ChartValues(())

    def show_values(self, values: ChartValues) -> None:
        self.values = values
        self.table.clear()
        self.table.setColumnCount(len(values.columns))
        self.table.setHorizontalHeaderLabels(list(values.columns))
        self.table.setRowCount(len(values.rows))
        for r, row in enumerate(values.rows):
            for c, text in enumerate(row):
                self.table.setItem(r, c, QTableWidgetItem(text))
        self.plot.setAccessibleDescription(values.as_text())
        self.setAccessibleDescription(values.as_text())

    def _show_table(self, on: bool) -> None:
        self.stack.setCurrentIndex(1 if on else 0)

    # --- theme ---
    def colours(self) -> Colours:
        return current_colours()

    def pen(self, index: int, width: float = 2.0, dashed: bool = False) -> object:
        import pyqtgraph as pg

        style = Qt.PenStyle.DashLine if dashed else Qt.PenStyle.SolidLine
        return pg.mkPen(PALETTE[index % len(PALETTE)], width=width, style=style)

    def muted_pen(self, dashed: bool = True) -> object:
        import pyqtgraph as pg

        return pg.mkPen(self.colours().muted, width=1, style=Qt.PenStyle.DashLine if dashed else Qt.PenStyle.SolidLine)

    def _style(self) -> None:
        if self._plot is None:
            return
        import pyqtgraph as pg

        c = self.colours()
        self._plot.setBackground(c.base)
        item = self._plot.getPlotItem()
        for name in ("left", "bottom"):
            axis = item.getAxis(name)
            axis.setPen(pg.mkPen(c.border))
            axis.setTextPen(pg.mkPen(c.text))
        item.setLabel("bottom", self.x_label, color=c.muted)
        item.setLabel("left", self.y_label, units=self.y_units or None, color=c.muted)
        item.showGrid(x=True, y=True, alpha=0.15)

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange and self._plot is not None:  # apply_theme: a new palette
            # Once apply_theme has also recorded the theme's name; with ``self`` as context, a chart deleted in the
            # meantime drops the call.
            QTimer.singleShot(0, self, self._restyle)

    def _restyle(self) -> None:
        if self._plot is None or not shiboken6.isValid(self._plot):  # its plot went with a page being torn down
            return
        self._style()
        self.redraw()

    def add_legend(self, offset: tuple[int, int] = (-10, 10)) -> None:
        """A legend in a corner: (-x, y) top right, (-x, -y) bottom right."""
        item = self.plot.getPlotItem()
        if item.legend is None:
            item.addLegend(offset=offset, labelTextColor=self.colours().text)


def figure(value: float, digits: int = 3) -> str:
    """A number in words for a table: "—" for NaN."""
    return "—" if value != value else f"{value:.{digits}f}"


__all__ = ["PALETTE", "Chart", "ChartValues", "current_colours", "figure"]
