"""The shell: navigation sidebar, page stack, menus and shortcuts, status bar, model loading and clean shutdown.

Later features add their pages with ``add_page``; the shell itself knows only Predict and Settings.
"""

from __future__ import annotations

import gc
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QThread, Signal
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QMainWindow,
    QMessageBox,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from pneumodesk import __version__

from .dialogs import IntendedUseNotice, ModelCardDialog, ShortcutsDialog
from .export import default_export_name
from .predict_page import PredictPage
from .settings import Settings, app_home
from .settings_page import SettingsPage
from .shortcuts import COMMANDS
from .theme import apply_theme
from .verdicts import AGREE, DISAGREE, VerdictStore
from .workers import ModelLoader, start_in_thread
from .worklist_model import FilterMode

if TYPE_CHECKING:
    from collections.abc import Callable

    from pneumodesk.inference import Predictor

OFFLINE_NOTE = "offline — images stay on this workstation"


class MainWindow(QMainWindow):
    """One window per app. ``home`` (or $PNEUMODESK_HOME) holds settings and verdicts; ``bundle`` the model."""

    model_loaded = Signal()
    model_failed = Signal(str)

    def __init__(self, home: Path | None = None, bundle: Path | None = None) -> None:
        super().__init__()
        self.home = app_home(home)
        self.settings = Settings(self.home)
        self.verdicts = VerdictStore(self.home / "verdicts.json")
        self.setWindowTitle(f"PneumoDesk {__version__}")
        self.setAccessibleName("PneumoDesk main window")
        self.resize(1400, 860)
        self.colours = apply_theme(QApplication.instance(), self.settings.theme)
        self.predictor: Predictor | None = None
        self.actions_by_id: dict[str, QAction] = {}
        self.dialogs: list[QWidget] = []

        self.sidebar = QListWidget()
        self.sidebar.setObjectName("sidebar")
        self.sidebar.setAccessibleName("Navigation")
        self.sidebar.setFixedWidth(190)
        self.pages = QStackedWidget()
        self.sidebar.currentRowChanged.connect(self.pages.setCurrentIndex)
        brand = QLabel("PneumoDesk")
        brand.setObjectName("brand")
        left = QVBoxLayout()
        left.setContentsMargins(0, 0, 0, 0)
        left.setSpacing(0)
        left.addWidget(brand)
        left.addWidget(self.sidebar, 1)
        left_widget = QWidget()
        left_widget.setObjectName("sidebar_column")
        left_widget.setLayout(left)
        centre = QWidget()
        row = QHBoxLayout(centre)
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(0)
        row.addWidget(left_widget)
        row.addWidget(self.pages, 1)
        self.setCentralWidget(centre)

        self.predict_page = PredictPage(self.settings, self.verdicts)
        self.predict_page.model.set_colours(self.colours.positive, self.colours.negative, self.colours.error)
        self.settings_page = SettingsPage(self.settings, str(self.verdicts.path))
        self.settings_page.theme_changed.connect(self.set_theme)
        self.settings_page.operating_point_changed.connect(self.set_operating_point)
        self.settings_page.opacity_changed.connect(self.predict_page.viewer.set_opacity)
        self.predict_page.viewer.opacity_changed.connect(self.settings_page.set_opacity)
        self.add_page("Predict", self.predict_page)
        self.add_page("Settings", self.settings_page)
        self.sidebar.setCurrentRow(0)

        self.model_label = QLabel("Model: loading…")
        self.model_label.setAccessibleName("Model version")
        self.operating_point_label = QLabel("Operating point: —")
        self.operating_point_label.setAccessibleName("Operating point")
        offline = QLabel(OFFLINE_NOTE)
        offline.setAccessibleName("Privacy")
        for label in (self.model_label, self.operating_point_label):
            self.statusBar().addWidget(label)
        self.statusBar().addPermanentWidget(offline)
        self._build_actions()

        self._loader: ModelLoader | None = ModelLoader(bundle, self.settings.operating_point)
        self._loader.loaded.connect(self._on_model_loaded)
        self._loader.failed.connect(self._on_model_failed)
        self._loader_thread: QThread | None = start_in_thread(self._loader, "pneumodesk-model-loader")

    # --- pages ---
    def add_page(self, title: str, widget: QWidget) -> int:
        """Append a page to the sidebar and the stack; returns its index."""
        self.sidebar.addItem(title)
        self.sidebar.item(self.sidebar.count() - 1).setToolTip(title)
        return self.pages.addWidget(widget)

    def show_page(self, title: str) -> None:
        for index in range(self.sidebar.count()):
            if self.sidebar.item(index).text() == title:
                self.sidebar.setCurrentRow(index)
                return
        raise KeyError(title)

    # --- actions ---
    def _handlers(self) -> dict[str, Callable[[], object]]:
        page, canvas = self.predict_page, self.predict_page.viewer.canvas
        return {
            "open_files": page.open_files_dialog,
            "open_folder": page.open_folder_dialog,
            "cancel_batch": page.cancel_batch,
            "export_pdf": self.export_pdf_dialog,
            "export_csv": self.export_csv_dialog,
            "next_image": lambda: page.step(+1),
            "previous_image": lambda: page.step(-1),
            "agree": lambda: page.set_verdict(AGREE),
            "disagree": lambda: page.set_verdict(DISAGREE),
            "clear_verdict": lambda: page.set_verdict(None),
            "filter_all": lambda: self.set_filter(FilterMode.ALL),
            "filter_positives": lambda: self.set_filter(FilterMode.POSITIVES),
            "filter_errors": lambda: self.set_filter(FilterMode.ERRORS),
            "toggle_overlay": page.toggle_overlay,
            "zoom_in": lambda: canvas.zoom_by(1.25),
            "zoom_out": lambda: canvas.zoom_by(0.8),
            "fit": canvas.fit,
            "invert": canvas.toggle_invert,
            "rotate": canvas.rotate,
            "flip_horizontal": canvas.flip_horizontal,
            "flip_vertical": canvas.flip_vertical,
            "reset_view": canvas.reset_view,
            "model_card": self.show_model_card,
            "shortcuts": self.show_shortcuts,
            "quit": self.close,
        }

    def _build_actions(self) -> None:
        handlers = self._handlers()
        menus = {group: self.menuBar().addMenu(f"&{group}") for group in ("Files", "Worklist", "Viewer", "Help")}
        for command in COMMANDS:
            action = QAction(command.text, self)
            action.setShortcuts([QKeySequence(key) for key in command.keys])
            action.triggered.connect(lambda _=False, handler=handlers[command.id]: handler())
            menus[command.group].addAction(action)
            self.addAction(action)
            self.actions_by_id[command.id] = action

    def set_filter(self, mode: FilterMode) -> None:
        combo = self.predict_page.filter
        combo.setCurrentIndex(combo.findData(mode.value))

    # --- model ---
    def _finish_loader(self) -> None:
        if self._loader_thread is not None:
            self._loader_thread.quit()
            self._loader_thread.wait()
            self._loader_thread = None
            self._loader = None

    def _on_model_loaded(self, batch: Predictor, viewer: Predictor) -> None:
        self._finish_loader()
        # torch and Qt are loaded now: keep the ~450 000 objects they bring out of the cyclic collector, whose full
        # passes over them would otherwise freeze the window for ~200 ms at unpredictable moments.
        gc.freeze()
        self.predictor = batch
        self.model_label.setText(f"Model: {batch.card.name} · version {batch.model_version}")
        self._show_operating_point()
        self.settings_page.set_model(batch.card, batch.operating_point_name)
        self.predict_page.set_predictors(batch, viewer)
        self.model_loaded.emit()

    def _on_model_failed(self, message: str) -> None:
        self._finish_loader()
        self.model_label.setText("Model: not loaded")
        self.model_label.setToolTip(message)
        self.predict_page.set_model_error(message)
        self.model_failed.emit(message)

    def _show_operating_point(self) -> None:
        if self.predictor is not None:
            point = self.predictor.operating_point
            self.operating_point_label.setText(
                f"Operating point: {self.predictor.operating_point_name} (threshold {point.threshold * 100:.1f} %)"
            )

    def set_operating_point(self, name: str) -> None:
        if self.predictor is None:
            return
        self.predictor = self.predictor.with_operating_point(name)
        self.predict_page.set_operating_point(name)
        self._show_operating_point()

    def set_theme(self, theme: str) -> None:
        self.colours = apply_theme(QApplication.instance(), theme)
        self.predict_page.model.set_colours(self.colours.positive, self.colours.negative, self.colours.error)

    # --- dialogs ---
    def _keep(self, dialog: QWidget) -> QWidget:
        self.dialogs.append(dialog)
        dialog.finished.connect(lambda _=0: self.dialogs.remove(dialog) if dialog in self.dialogs else None)
        return dialog

    def show_first_start_notice(self) -> IntendedUseNotice | None:
        """On first start, show the intended-use notice (non-blocking) until the reader confirms it."""
        if self.settings.intended_use_acknowledged:
            return None
        notice = IntendedUseNotice(self)
        notice.accepted.connect(lambda: setattr(self.settings, "intended_use_acknowledged", True))
        self._keep(notice)
        notice.open()
        return notice

    def show_model_card(self) -> ModelCardDialog | None:
        if self.predictor is None:
            self.statusBar().showMessage("The model card is available once the model has loaded.", 5000)
            return None
        dialog = ModelCardDialog(self.predictor.card, self)
        self._keep(dialog)
        dialog.show()
        return dialog

    def show_shortcuts(self) -> ShortcutsDialog:
        dialog = ShortcutsDialog(parent=self)
        self._keep(dialog)
        dialog.show()
        return dialog

    # --- export ---
    def _save_path(self, title: str, kind: str, suffix: str, pattern: str) -> Path | None:
        folder = Path(self.settings.last_folder or Path.home())
        chosen, _ = QFileDialog.getSaveFileName(self, title, str(folder / default_export_name(kind, suffix)), pattern)
        return Path(chosen) if chosen else None

    def export_pdf_dialog(self) -> None:
        path = self._save_path("Export report", "report", "pdf", "PDF report (*.pdf)")
        if path is not None:
            self._export(lambda: self.predict_page.export_pdf(path))

    def export_csv_dialog(self) -> None:
        path = self._save_path("Export worklist", "worklist", "csv", "CSV table (*.csv)")
        if path is not None:
            self._export(lambda: self.predict_page.export_csv(path))

    def _export(self, action: Callable[[], Path]) -> None:
        try:
            written = action()
        except (ValueError, OSError) as error:
            QMessageBox.warning(self, "Export failed", str(error))
            return
        self.statusBar().showMessage(f"Saved {written.name}", 8000)

    # --- shutdown ---
    def closeEvent(self, event: QCloseEvent) -> None:
        """Stop the batch after the image in hand and join every worker thread; verdicts are already on disk."""
        self.predict_page.shutdown()
        self._finish_loader()
        super().closeEvent(event)
