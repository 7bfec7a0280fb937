"""Confusion matrices at the operating point, one 2 × 2 grid per model, shaded by share of its row."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import QEvent, Qt, QTimer
from PySide6.QtWidgets import QGridLayout, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from pneumodesk.model.curves import ConfusionCounts

from .base import ChartValues, current_colours, figure


class ConfusionMatrixView(QWidget):
    """Rows: the true class; columns: the decision at the threshold. Its numbers are the picture, so its text
    alternative (``values``) lists the same counts."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAccessibleName("Confusion matrices at the operating point")
        self.values = ChartValues(())
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(QLabel("<b>Confusion matrix at the operating point</b>"))
        self.counts: list[tuple[str, ConfusionCounts]] = []
        self.grids = QHBoxLayout()
        layout.addLayout(self.grids)
        layout.addStretch(1)

    def set_counts(self, counts: Sequence[tuple[str, ConfusionCounts]]) -> None:
        self.counts = list(counts)
        while self.grids.count():
            taken = self.grids.takeAt(0)
            old = taken.widget() if taken is not None else None
            if old is not None:
                old.deleteLater()
        rows: list[tuple[str, ...]] = []
        for label, c in counts:
            self.grids.addWidget(self._grid(label, c))
            rows.append((label, f"{c.threshold:.3f}", str(c.true_positives), str(c.false_negatives),
                         str(c.false_positives), str(c.true_negatives), figure(c.sensitivity),
                         figure(c.specificity)))
        self.values = ChartValues(("Model", "Threshold", "Pneumonia flagged", "Pneumonia missed", "Normal flagged",
                                   "Normal cleared", "Sensitivity", "Specificity"), tuple(rows))
        self.setAccessibleDescription(self.values.as_text())

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange and self.counts:  # the theme changed: shade again
            QTimer.singleShot(0, lambda: self.set_counts(self.counts))

    def _grid(self, label: str, c: ConfusionCounts) -> QWidget:
        colours = current_colours()
        box = QWidget()
        grid = QGridLayout(box)
        grid.addWidget(QLabel(f"<b>{label}</b> (threshold {c.threshold:.3f})"), 0, 0, 1, 3)
        grid.addWidget(QLabel("flagged"), 1, 1, Qt.AlignmentFlag.AlignCenter)
        grid.addWidget(QLabel("not flagged"), 1, 2, Qt.AlignmentFlag.AlignCenter)
        cells = (("pneumonia", c.true_positives, c.false_negatives, colours.positive),
                 ("normal", c.false_positives, c.true_negatives, colours.negative))
        for r, (truth, flagged, cleared, good) in enumerate(cells, start=2):
            grid.addWidget(QLabel(truth), r, 0)
            total = max(flagged + cleared, 1)
            correct = flagged if truth == "pneumonia" else cleared
            for col, count in enumerate((flagged, cleared), start=1):
                cell = QLabel(f"{count}\n{count / total:.0%}")
                cell.setAlignment(Qt.AlignmentFlag.AlignCenter)
                cell.setMinimumSize(84, 44)
                tint = good if count == correct else colours.muted
                alpha = int(40 + 160 * count / total)
                cell.setStyleSheet(f"background: rgba({_rgb(tint)}, {alpha}); border-radius: 4px;")
                cell.setAccessibleName(f"{label}: {truth} {'flagged' if col == 1 else 'not flagged'}: {count}")
                grid.addWidget(cell, r, col)
        return box


def _rgb(colour: str) -> str:
    value = colour.lstrip("#")
    return ", ".join(str(int(value[i:i + 2], 16)) for i in (0, 2, 4))


__all__ = ["ConfusionMatrixView"]
