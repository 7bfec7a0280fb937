"""The viewer page body: the image canvas beside the facts a reader needs (probability, decision, model, verdict)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtGui import QColor, QLinearGradient, QPainter, QPaintEvent
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QSlider,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ..verdicts import AGREE, DISAGREE
from .viewer import HEAT_LUT, ImageCanvas

if TYPE_CHECKING:
    from .worklist_model import WorklistItem

HEATMAP_CAVEAT = (
    "The heat map shows which regions most influenced the model's score. It is not a localisation of disease "
    "and must not be read as one."
)


class HeatmapLegend(QWidget):
    """The overlay's colour scale, low to high influence."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAccessibleName("Heat map colour legend: blue is low influence, red is high influence")
        self.setFixedHeight(34)

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        bar = QRectF(0, 0, self.width(), 12)
        gradient = QLinearGradient(bar.topLeft(), bar.topRight())
        for stop in range(0, 256, 32):
            r, g, b, _ = (int(v) for v in HEAT_LUT[stop])
            gradient.setColorAt(stop / 255, QColor(r, g, b))
        gradient.setColorAt(1.0, QColor(*(int(v) for v in HEAT_LUT[255][:3])))
        painter.fillRect(bar, gradient)
        painter.setPen(self.palette().color(self.foregroundRole()))
        text = QRectF(0, 14, self.width(), 18)
        painter.drawText(text, Qt.AlignmentFlag.AlignLeft, "low influence")
        painter.drawText(text, Qt.AlignmentFlag.AlignRight, "high influence")


class ViewerPanel(QWidget):
    """Shows one worklist item; emits the reader's requests (verdict, overlay) without acting on them itself."""

    verdict_requested = Signal(object)  # "agree", "disagree" or None
    overlay_toggled = Signal(bool)
    opacity_changed = Signal(float)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.canvas = ImageCanvas()
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.canvas, 1)
        layout.addWidget(self._build_side())
        self.show_item(None, 0, 0)

    def _build_side(self) -> QFrame:
        side = QFrame()
        side.setObjectName("panel")
        side.setFixedWidth(300)
        box = QVBoxLayout(side)
        box.setContentsMargins(14, 14, 14, 14)
        self.position = QLabel()
        self.position.setObjectName("muted")
        self.file_name = QLabel()
        self.file_name.setWordWrap(True)
        self.file_name.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.probability = QLabel()
        self.probability.setObjectName("probability")
        self.probability.setAccessibleName("Probability of pneumonia")
        self.probability_caption = QLabel("probability of pneumonia")
        self.probability_caption.setObjectName("muted")
        self.decision = QLabel()
        self.decision.setAccessibleName("Decision at the operating point")
        self.threshold = QLabel()
        self.threshold.setWordWrap(True)
        self.model_version = QLabel()
        self.model_version.setObjectName("muted")
        self.model_version.setWordWrap(True)
        self.error = QLabel()
        self.error.setObjectName("error_text")
        self.error.setWordWrap(True)
        for widget in (self.position, self.file_name, self.probability, self.probability_caption, self.decision,
                       self.threshold, self.model_version, self.error):
            box.addWidget(widget)

        box.addSpacing(10)
        box.addWidget(QLabel("<b>Your verdict</b>"))
        verdicts = QHBoxLayout()
        self.agree = QPushButton("Agree (A)")
        self.disagree = QPushButton("Disagree (D)")
        self._verdict_group = QButtonGroup(self)
        self._verdict_group.setExclusive(False)
        for button, verdict in ((self.agree, AGREE), (self.disagree, DISAGREE)):
            button.setCheckable(True)
            button.setAccessibleName(f"Verdict: {verdict} with the model")
            button.clicked.connect(lambda checked, v=verdict: self.verdict_requested.emit(v if checked else None))
            verdicts.addWidget(button)
        box.addLayout(verdicts)
        self.reading = QLabel("")
        self.reading.setObjectName("muted")
        self.reading.setWordWrap(True)
        self.reading.setAccessibleName("Your reading")
        box.addWidget(self.reading)

        box.addSpacing(10)
        self.overlay = QCheckBox("Show heat map (H)")
        self.overlay.setAccessibleName("Show heat map overlay")
        self.overlay.toggled.connect(self.overlay_toggled)
        box.addWidget(self.overlay)
        opacity_row = QHBoxLayout()
        opacity_row.addWidget(QLabel("Opacity"))
        self.opacity = QSlider(Qt.Orientation.Horizontal)
        self.opacity.setRange(0, 100)
        self.opacity.setAccessibleName("Heat map opacity")
        self.opacity.valueChanged.connect(lambda value: self.opacity_changed.emit(value / 100))
        opacity_row.addWidget(self.opacity, 1)
        box.addLayout(opacity_row)
        box.addWidget(HeatmapLegend())
        caveat = QLabel(HEATMAP_CAVEAT)
        caveat.setObjectName("caveat")
        caveat.setWordWrap(True)
        box.addWidget(caveat)

        box.addSpacing(10)
        tools = QGridLayout()
        canvas = self.canvas
        buttons = [
            ("Fit", "Fit the image to the view (F)", canvas.fit),
            ("Zoom +", "Zoom in (+)", lambda: canvas.zoom_by(1.25)),
            ("Zoom −", "Zoom out (−)", lambda: canvas.zoom_by(0.8)),
            ("Invert", "Invert grey levels (I)", canvas.toggle_invert),
            ("Rotate", "Rotate 90° clockwise (R)", canvas.rotate),
            ("Flip ↔", "Flip left-right (X)", canvas.flip_horizontal),
            ("Flip ↕", "Flip top-bottom (Y)", canvas.flip_vertical),
            ("Reset", "Reset zoom, window, rotation and flips (0)", canvas.reset_view),
        ]
        for i, (text, tip, action) in enumerate(buttons):
            tool = QToolButton()
            tool.setText(text)
            tool.setToolTip(tip)
            tool.setAccessibleName(tip.split(" (")[0])
            tool.clicked.connect(action)
            tool.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
            tools.addWidget(tool, i // 4, i % 4)
        box.addLayout(tools)
        hint = QLabel("Drag: pan · right-drag: window/level · wheel: zoom")
        hint.setObjectName("muted")
        hint.setWordWrap(True)
        box.addWidget(hint)
        box.addStretch(1)
        return side

    def set_opacity(self, opacity: float) -> None:
        self.opacity.setValue(round(opacity * 100))
        self.canvas.set_overlay_opacity(opacity)

    def show_item(self, item: WorklistItem | None, position: int, total: int) -> None:
        """Fill the facts for ``item`` (the image itself arrives later, from the viewer worker)."""
        self.position.setText(f"Image {position} of {total}" if item else "No image selected")
        self.file_name.setText(item.name if item else "")
        prediction = item.prediction if item else None
        self.error.setText(item.error or "" if item else "")
        self.error.setVisible(bool(item and item.error))
        if prediction is None:
            self.probability.setText("—")
            status = item.status.value if item else ""
            self.decision.setText("" if not item or item.error else f"Not predicted yet ({status})")
            self.decision.setObjectName("muted")
            self.threshold.setText("")
            self.model_version.setText("")
        else:
            self.probability.setText(f"{prediction.probability * 100:.1f} %")
            self.decision.setText("PNEUMONIA" if prediction.is_pneumonia else "NORMAL")
            self.decision.setObjectName("decision_positive" if prediction.is_pneumonia else "decision_negative")
            self.threshold.setText(
                f"Decision at operating point <b>{prediction.operating_point}</b> "
                f"(threshold {prediction.threshold * 100:.1f} %)"
            )
            self.model_version.setText(f"Model version {prediction.model_version}")
        self.decision.style().unpolish(self.decision)
        self.decision.style().polish(self.decision)
        verdict = item.verdict if item else None
        self.agree.setChecked(verdict == AGREE)
        self.disagree.setChecked(verdict == DISAGREE)
        can_judge = bool(item and item.prediction is not None and item.sha256)
        self.agree.setEnabled(can_judge)
        self.disagree.setEnabled(can_judge)
