"""ROC curves, reliability diagrams and confusion matrices of one model, or of a candidate beside the model in use
on the same validation images, read from the ``curves`` the figures carry (see ``pneumodesk.model.curves``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from PySide6.QtWidgets import QHBoxLayout, QLabel, QVBoxLayout, QWidget

from pneumodesk.model import ModelError
from pneumodesk.model.curves import ModelCurves

from ..charts import ConfusionMatrixView, ReliabilityChart, RocChart


def curves_of(figures: Mapping[str, Any] | None) -> ModelCurves | None:
    """The curves recorded in a model's figures (or a card's validation section); None when there are none or
    they cannot be read."""
    data = (figures or {}).get("curves")
    if not isinstance(data, Mapping):
        return None
    try:
        return ModelCurves.from_json_dict(data)
    except ModelError:
        return None


class ModelCurvesPanel(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAccessibleName("Model curves")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.note = QLabel()
        self.note.setObjectName("muted")
        self.note.setWordWrap(True)
        layout.addWidget(self.note)
        row = QHBoxLayout()
        self.roc = RocChart()
        self.reliability = ReliabilityChart()
        row.addWidget(self.roc, 1)
        row.addWidget(self.reliability, 1)
        layout.addLayout(row, 1)
        self.confusion = ConfusionMatrixView()
        layout.addWidget(self.confusion)
        self.shown: list[tuple[str, ModelCurves]] = []

    def show_figures(self, labelled: Sequence[tuple[str, Mapping[str, Any] | None]]) -> list[tuple[str, ModelCurves]]:
        """Draw the curves of each (label, figures) that has them, in order; returns what was drawn."""
        before = self.shown
        self.shown = [(label, curves) for label, figures in labelled if (curves := curves_of(figures)) is not None]
        missing = [label for label, figures in labelled if curves_of(figures) is None]
        if self.shown or before:  # an empty panel stays undrawn (no plot is built for nothing)
            self.roc.set_curves(self.shown)
            self.reliability.set_curves(self.shown)
        self.confusion.set_counts([(label, curves.confusion) for label, curves in self.shown])
        self.note.setText(f"No curves were recorded for: {', '.join(missing)} (models checked before curves were "
                          "kept have figures only)." if missing else "")
        self.note.setVisible(bool(missing))
        return self.shown


__all__ = ["ModelCurvesPanel", "curves_of"]
