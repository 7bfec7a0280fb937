"""The Settings page: theme, operating point, heat-map opacity, and where this workstation keeps its files."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QComboBox, QFormLayout, QLabel, QSlider, QSpinBox, QVBoxLayout, QWidget

from ..settings import LOCK_MINUTES_RANGE, Settings
from .base import SessionPage

if TYPE_CHECKING:
    from pneumodesk.model import ModelCard


class SettingsPage(SessionPage):
    """Edits ``Settings`` and announces each change; the window applies it (theme, operating point, opacity). The
    settings belong to the workstation, not to the signed-in user: the session changes nothing here, except in the
    sections added with ``add_section`` (each shows itself only to the roles it serves)."""

    theme_changed = Signal(str)
    operating_point_changed = Signal(str)
    opacity_changed = Signal(float)
    lock_minutes_changed = Signal(int)

    def __init__(self, settings: Settings, verdicts_path: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.settings = settings
        outer = QVBoxLayout(self)
        outer.setContentsMargins(24, 20, 24, 20)
        title = QLabel("<h2>Settings</h2>")
        outer.addWidget(title)
        form = QFormLayout()
        form.setLabelAlignment(Qt.AlignmentFlag.AlignRight)
        form.setHorizontalSpacing(18)
        form.setVerticalSpacing(14)

        self.theme = QComboBox()
        self.theme.setAccessibleName("Theme")
        self.theme.setMaximumWidth(420)
        self.theme.addItem("Dark (reading room)", "dark")
        self.theme.addItem("Light", "light")
        self.theme.setCurrentIndex(max(self.theme.findData(settings.theme), 0))
        self.theme.currentIndexChanged.connect(self._theme_chosen)
        form.addRow("Theme", self.theme)

        self.operating_point = QComboBox()
        self.operating_point.setAccessibleName("Operating point")
        self.operating_point.setMaximumWidth(420)
        self.operating_point.setEnabled(False)
        self.operating_point.addItem("(the model is loading)")
        self.operating_point.currentIndexChanged.connect(self._operating_point_chosen)
        self.operating_point_help = QLabel()
        self.operating_point_help.setObjectName("muted")
        self.operating_point_help.setWordWrap(True)
        form.addRow("Operating point", self.operating_point)
        form.addRow("", self.operating_point_help)

        self.opacity = QSlider(Qt.Orientation.Horizontal)
        self.opacity.setAccessibleName("Heat map opacity")
        self.opacity.setRange(0, 100)
        self.opacity.setMaximumWidth(320)
        self.opacity.setValue(round(settings.heatmap_opacity * 100))
        self.opacity.valueChanged.connect(lambda value: self.opacity_changed.emit(value / 100))
        form.addRow("Heat-map opacity", self.opacity)

        self.lock_minutes = QSpinBox()
        self.lock_minutes.setAccessibleName("Lock after idle minutes")
        self.lock_minutes.setRange(*LOCK_MINUTES_RANGE)
        self.lock_minutes.setSuffix(" min")
        self.lock_minutes.setMaximumWidth(120)
        self.lock_minutes.setValue(settings.lock_minutes)
        self.lock_minutes.valueChanged.connect(self._lock_minutes_chosen)
        form.addRow("Lock when idle for", self.lock_minutes)

        for label, text in (
            ("Settings file", str(settings.path)),
            ("Verdicts file", verdicts_path),
            ("Network", "None: PneumoDesk works offline and images stay on this workstation."),
        ):
            value = QLabel(text)
            value.setObjectName("muted")
            value.setWordWrap(True)
            value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            form.addRow(label, value)
        outer.addLayout(form)
        outer.addStretch(1)
        self._outer = outer
        self._sections: list[SessionPage] = []

    def add_section(self, section: SessionPage) -> None:
        """Add a section (e.g. the administrators' PACS connections) that follows this page's session."""
        self._outer.insertWidget(self._outer.count() - 1, section)
        self._sections.append(section)
        section.set_session(self.session)

    def session_changed(self) -> None:
        for section in self._sections:
            section.set_session(self.session)

    def shutdown(self) -> None:
        for section in self._sections:
            section.shutdown()

    def set_model(self, card: ModelCard, current: str) -> None:
        """Offer the model's operating points, with ``current`` selected."""
        self._card = card
        combo = self.operating_point
        combo.blockSignals(True)
        combo.clear()
        for name, point in card.operating_points.items():
            combo.addItem(f"{name} — threshold {point.threshold * 100:.1f} %", name)
        combo.setCurrentIndex(max(combo.findData(current), 0))
        combo.setEnabled(True)
        combo.blockSignals(False)
        self._describe(current)

    def set_opacity(self, opacity: float) -> None:
        self.opacity.blockSignals(True)
        self.opacity.setValue(round(opacity * 100))
        self.opacity.blockSignals(False)

    def _describe(self, name: str) -> None:
        point = self._card.operating_points.get(name)
        if point is not None:
            self.operating_point_help.setText(
                f"{point.description or name}. On validation data: sensitivity {point.sensitivity * 100:.1f} %, "
                f"specificity {point.specificity * 100:.1f} %."
            )

    def _lock_minutes_chosen(self, minutes: int) -> None:
        self.settings.lock_minutes = minutes
        self.lock_minutes_changed.emit(minutes)

    def _theme_chosen(self) -> None:
        theme = str(self.theme.currentData())
        self.settings.theme = theme
        self.theme_changed.emit(theme)

    def _operating_point_chosen(self) -> None:
        name = self.operating_point.currentData()
        if name:
            self.settings.operating_point = str(name)
            self._describe(str(name))
            self.operating_point_changed.emit(str(name))
