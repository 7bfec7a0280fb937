"""The shell: navigation sidebar, page stack, menus and shortcuts, status bar and clean shutdown. It wires the pages
to two controllers: ``SessionController`` (the access gate: Owner set-up, sign-in, idle lock, password change) and
``ModelLoader`` (the prediction model, loaded in the background).

Later features add their pages with ``add_page``, naming the permission that shows them. The window only *hides*
what the signed-in role may not do; ``pneumodesk.node`` refuses it anyway.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import Signal
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QDialog,
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
from pneumodesk.errors import PneumoDeskError
from pneumodesk.node import NodeService, Permission, UserSession
from pneumodesk.node.readings import Reading
from pneumodesk.pacs.service import PacsService

from .app import create_application
from .dialogs.gate import AccessGate
from .dialogs.help import IntendedUseNotice, ModelCardDialog, ShortcutsDialog
from .export import default_export_name
from .idle_lock import IdleWatcher
from .model_loader import ModelLoader
from .pages.accounts import AccountsPage
from .pages.approvals import ApprovalsPage
from .pages.audit import AuditPage
from .pages.base import SessionPage
from .pages.datasets import DatasetsPage
from .pages.federation import FederationPage
from .pages.models import ModelsPage
from .pages.predict import PredictPage
from .pages.query import QueryPage
from .pages.settings import SettingsPage
from .session_controller import SessionController
from .settings import Settings, app_homes
from .shortcuts import COMMANDS
from .theme import apply_theme
from .verdicts import AGREE, DISAGREE, VerdictStore
from .widgets.pacs_connections_panel import PacsConnectionsPanel
from .widgets.worklist_model import FilterMode

if TYPE_CHECKING:
    from collections.abc import Callable

    from pneumodesk.client import EngineResult
    from pneumodesk.inference import Predictor

OFFLINE_NOTE = "offline — images stay on this workstation"

#: Actions shown only to roles holding the permission (the service refuses them to anyone else anyway).
ACTION_PERMISSIONS: dict[str, Permission] = {
    "open_files": Permission.PREDICT,
    "open_folder": Permission.PREDICT,
    "export_pdf": Permission.EXPORT_REPORTS,
    "export_csv": Permission.EXPORT_REPORTS,
    "export_worklist_pdf": Permission.EXPORT_REPORTS,
    "agree": Permission.REVIEW,
    "disagree": Permission.REVIEW,
    "clear_verdict": Permission.REVIEW,
    "reading_normal": Permission.REVIEW,
    "reading_pneumonia": Permission.REVIEW,
    "reading_unsure": Permission.REVIEW,
}


class MainWindow(QMainWindow):
    """One window per app. ``home`` (or $PNEUMODESK_HOME) holds settings, verdicts and the node store (an installed
    app without either keeps the node machine-wide and the settings per user: ``node.homes``); ``bundle``
    the model. Without a ``session`` the window opens on the gate (Owner set-up or sign-in); the model loads
    meanwhile. Locking hides the workspace but keeps it, running batch included."""

    model_loaded = Signal()
    model_failed = Signal(str)
    signed_in = Signal(object)  # UserSession
    locked = Signal()
    unlocked = Signal()

    def __init__(self, home: Path | None = None, bundle: Path | None = None, session: UserSession | None = None,
                 node: NodeService | None = None) -> None:
        super().__init__()
        homes = app_homes(home)
        self.home = homes.node
        # An explicit ``bundle`` is also what the local model registry starts from (its model 1).
        self.node = node if node is not None else NodeService.open(self.home, default_bundle=bundle)
        self._owns_node = node is None
        self.settings = Settings(homes.user)  # theme, last folder: per OS user even on a machine-wide node
        self.verdicts = VerdictStore(self.home / "verdicts.json")
        self.setWindowTitle(f"PneumoDesk {__version__}")
        self.setAccessibleName("PneumoDesk main window")
        self.resize(1400, 860)
        self.colours = apply_theme(create_application(), self.settings.theme)
        self.predictor: Predictor | None = None
        self.actions_by_id: dict[str, QAction] = {}
        self.dialogs: list[QDialog] = []

        self.sidebar = QListWidget()
        self.sidebar.setObjectName("sidebar")
        self.sidebar.setAccessibleName("Navigation")
        self.sidebar.setFixedWidth(190)
        self.pages = QStackedWidget()
        self._page_entries: list[tuple[str, SessionPage, Permission | None]] = []
        self._shown_pages: list[SessionPage] = []
        self.sidebar.currentRowChanged.connect(self._on_sidebar_row)
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
        self.workspace = centre
        self.sessions = SessionController(self.node, self.settings.lock_minutes, self)
        self.sessions.session_changed.connect(self._on_session_changed)
        self.sessions.gate_shown.connect(self._on_gate_shown)
        self.sessions.signed_in.connect(self.signed_in)
        self.sessions.locked.connect(self.locked)
        self.sessions.unlocked.connect(self.unlocked)
        self.sessions.password_changed.connect(
            lambda _session: self.statusBar().showMessage("Your password was changed.", 8000))
        self.root = QStackedWidget()
        self.root.addWidget(self.workspace)
        self.root.addWidget(self.sessions.gate)
        self.setCentralWidget(self.root)

        self._build_pages()
        self._build_status_bar()
        self._build_actions()
        self.model_loader = ModelLoader(self)
        self.model_loader.ready.connect(self._on_model_loaded)
        self.model_loader.failed.connect(self._on_model_failed)
        if session is not None:
            self.sessions.apply(session)
        else:
            self.sessions.sign_out()
        self._load_model(bundle)

    def _build_pages(self) -> None:
        self.predict_page = PredictPage(self.settings, self.verdicts, self.node.clinical,
                                        readings=self.node.readings)
        self.predict_page.model.set_colours(self.colours.positive, self.colours.negative, self.colours.error)
        self.predict_page.report_written.connect(lambda path: self.statusBar().showMessage(f"Saved {path.name}", 8000))
        self.predict_page.report_failed.connect(self._on_report_failed)
        self.settings_page = SettingsPage(self.settings, str(self.verdicts.path))
        self.settings_page.theme_changed.connect(self.set_theme)
        self.settings_page.operating_point_changed.connect(self.set_operating_point)
        self.settings_page.opacity_changed.connect(self.predict_page.viewer.set_opacity)
        self.predict_page.viewer.opacity_changed.connect(self.settings_page.set_opacity)
        self.settings_page.lock_minutes_changed.connect(self.sessions.set_lock_minutes)
        self.pacs = PacsService(self.node)
        self.query_page = QueryPage(self.pacs)
        self.query_page.retrieved.connect(self._on_pacs_retrieved)
        self.settings_page.add_section(PacsConnectionsPanel(self.pacs, self.settings))
        self.accounts_page = AccountsPage(self.node)
        self.accounts_page.changed.connect(self.sessions.refresh)
        self.audit_page = AuditPage(self.node)
        self.datasets_page = DatasetsPage(self.node)
        self.federation_page = FederationPage(self.node, self.home)
        self.approvals_page = ApprovalsPage(self.node)
        self.models_page = ModelsPage(self.node)
        self.models_page.active_model_changed.connect(self.reload_model)
        self.models_page.drift_warning.connect(lambda text: self.statusBar().showMessage(text, 30000))
        self.datasets_page.changed.connect(lambda: self.approvals_page.set_session(self.session))
        self.federation_page.approvals_changed.connect(lambda: self.approvals_page.set_session(self.session))
        self.approvals_page.changed.connect(self.federation_page.approvals_updated)
        self.federation_page.participation.finished.connect(self._on_participation_finished)
        self.add_page("Predict", self.predict_page, Permission.PREDICT)
        self.add_page("PACS", self.query_page, Permission.PREDICT)
        self.add_page("Datasets", self.datasets_page, Permission.MANAGE_DATASETS)
        self.add_page("Federation", self.federation_page, Permission.MANAGE_FEDERATION)
        self.add_page("Training", self.approvals_page, Permission.APPROVE_TRAINING)
        self.add_page("Models", self.models_page, Permission.APPROVE_TRAINING)
        self.add_page("Accounts", self.accounts_page, Permission.MANAGE_ACCOUNTS)
        self.add_page("Audit", self.audit_page, Permission.VIEW_AUDIT)
        self.add_page("Settings", self.settings_page)

    def _on_pacs_retrieved(self, paths: list[Path]) -> None:
        """Radiographs retrieved from the PACS join the worklist like files, and the worklist comes to the front."""
        self.predict_page.add_paths(paths)
        self.show_page("Predict")

    def _build_status_bar(self) -> None:
        self.model_label = QLabel("Model: loading…")
        self.model_label.setAccessibleName("Model version")
        self.operating_point_label = QLabel("Operating point: —")
        self.operating_point_label.setAccessibleName("Operating point")
        self.account_label = QLabel("not signed in")
        self.account_label.setAccessibleName("Signed-in account")
        offline = QLabel(OFFLINE_NOTE)
        offline.setAccessibleName("Privacy")
        for label in (self.model_label, self.operating_point_label):
            self.statusBar().addWidget(label)
        self.statusBar().addPermanentWidget(self.account_label)
        self.statusBar().addPermanentWidget(offline)

    # --- pages ---
    def add_page(self, title: str, page: SessionPage, permission: Permission | None = None) -> int:
        """Add a page, listed in the sidebar only while the signed-in role holds ``permission`` (None: always). The
        page gets the session (``SessionPage.set_session``) whenever it changes."""
        self._page_entries.append((title, page, permission))
        index = self.pages.addWidget(page)
        page.set_session(self.session)
        self._rebuild_sidebar()
        return index

    def _rebuild_sidebar(self, first_page: bool = False) -> None:
        current = None if first_page else self.pages.currentWidget()
        session = self.session
        visible = [(t, w) for t, w, p in self._page_entries if p is None or (session is not None and session.can(p))]
        self.sidebar.blockSignals(True)
        self.sidebar.clear()
        for title, _ in visible:
            self.sidebar.addItem(title)
            self.sidebar.item(self.sidebar.count() - 1).setToolTip(title)
        self._shown_pages = [w for _, w in visible]
        self.sidebar.blockSignals(False)
        row = self._shown_pages.index(current) if isinstance(current, SessionPage) and current in self._shown_pages \
            else 0
        if self._shown_pages:
            self.sidebar.setCurrentRow(row)
            self.pages.setCurrentWidget(self._shown_pages[row])

    def _on_sidebar_row(self, row: int) -> None:
        if 0 <= row < len(self._shown_pages):
            self.pages.setCurrentWidget(self._shown_pages[row])

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
            "export_worklist_pdf": self.export_worklist_pdf_dialog,
            "next_image": lambda: page.step(+1),
            "previous_image": lambda: page.step(-1),
            "agree": lambda: page.set_verdict(AGREE),
            "disagree": lambda: page.set_verdict(DISAGREE),
            "clear_verdict": lambda: page.set_verdict(None),
            "reading_normal": lambda: page.set_reading(Reading.NORMAL),
            "reading_pneumonia": lambda: page.set_reading(Reading.PNEUMONIA),
            "reading_unsure": lambda: page.set_reading(Reading.UNSURE),
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
            "lock_screen": self.lock,
            "change_password": self.change_password,
            "model_card": self.show_model_card,
            "shortcuts": self.show_shortcuts,
            "quit": self.close,
        }

    def _build_actions(self) -> None:
        handlers = self._handlers()
        groups = ("Files", "Worklist", "Viewer", "Account", "Help")
        menus = {group: self.menuBar().addMenu(f"&{group}") for group in groups}
        for command in COMMANDS:
            action = QAction(command.text, self)
            action.setShortcuts([QKeySequence(key) for key in command.keys])
            action.triggered.connect(lambda _=False, handler=handlers[command.id]: handler())
            menus[command.group].addAction(action)
            self.addAction(action)
            self.actions_by_id[command.id] = action

    # --- access (SessionController decides; the window shows) ---
    @property
    def session(self) -> UserSession | None:
        return self.sessions.session

    @property
    def gate(self) -> AccessGate:
        return self.sessions.gate

    @property
    def idle(self) -> IdleWatcher:
        return self.sessions.idle

    @property
    def is_locked(self) -> bool:
        return self.sessions.is_locked

    def lock(self) -> None:
        self.sessions.lock()

    def sign_out(self) -> None:
        self.sessions.sign_out()

    def change_password(self) -> None:
        self.sessions.change_password()

    def _on_session_changed(self, session: UserSession | None, another_user: bool) -> None:
        """Hand ``session`` to every page and show the pages and actions its role allows; at sign-out, delete the
        images retrieved from the PACS when the workstation is set to."""
        for _, page, _ in self._page_entries:
            page.set_session(session)
        if session is None and self.settings.clear_pacs_cache_at_sign_out:
            self.pacs.cache.clear()
        self._rebuild_sidebar(first_page=another_user and session is not None)
        self._apply_action_permissions()
        self.account_label.setText("not signed in" if session is None else f"{session.display_name} · {session.role}")

    def _on_gate_shown(self, shown: bool) -> None:
        self.root.setCurrentWidget(self.sessions.gate if shown else self.workspace)
        self._apply_action_permissions()

    def _apply_action_permissions(self) -> None:
        session, open_ = self.session, self.root.currentWidget() is self.workspace
        for command_id, action in self.actions_by_id.items():
            needed = ACTION_PERMISSIONS.get(command_id)
            allowed = command_id == "quit" or (session is not None and (needed is None or session.can(needed)))
            action.setVisible(allowed)
            action.setEnabled(allowed and (open_ or command_id == "quit"))

    def set_filter(self, mode: FilterMode) -> None:
        combo = self.predict_page.filter
        combo.setCurrentIndex(combo.findData(mode.value))

    def _on_participation_finished(self, result: EngineResult) -> None:
        """Training ended: the ledger and the model registry changed; say so if new models wait for review."""
        for page in (self.approvals_page, self.models_page):
            page.set_session(self.session)
        waiting = len(result.candidates)
        if waiting:
            self.statusBar().showMessage(f"{waiting} new model(s) wait for review on the Models page.", 15000)

    # --- model (ModelLoader loads; the window hands the predictors to the pages) ---
    def _load_model(self, bundle: Path | None) -> None:
        """Load ``bundle`` (or else the node's active model, or else the bundled default) in the background."""
        locate = None if bundle is not None else self.node.models.active_bundle_dir
        self.model_loader.load(bundle, self.settings.operating_point, locate)

    def reload_model(self) -> None:
        """After a model was accepted or restored: predict with the node's active model from now on (results
        already in the worklist keep the model that computed them)."""
        self.model_label.setText("Model: loading…")
        self._load_model(None)

    def _on_model_loaded(self, batch: Predictor, viewer: Predictor) -> None:
        self.predictor = batch
        self.model_label.setText(f"Model: {batch.card.name} · version {batch.model_version}")
        self._show_operating_point()
        self.settings_page.set_model(batch.card, batch.operating_point_name)
        self.predict_page.set_predictors(batch, viewer)
        self.model_loaded.emit()

    def _on_model_failed(self, message: str) -> None:
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
        self.colours = apply_theme(create_application(), theme)
        self.predict_page.model.set_colours(self.colours.positive, self.colours.negative, self.colours.error)

    # --- dialogs ---
    def _keep(self, dialog: QDialog) -> QDialog:
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

    def export_worklist_pdf_dialog(self) -> None:
        """The report is written in the background (progress and Cancel beside the worklist's summary); the status
        bar says when it is saved."""
        if self.predict_page.report_running:
            self.statusBar().showMessage("A worklist report is still being written; wait for it or cancel it.", 8000)
            return
        path = self._save_path("Export worklist report", "worklist", "pdf", "PDF report (*.pdf)")
        if path is None:
            return
        try:
            self.predict_page.start_worklist_report(path)
        except (ValueError, PneumoDeskError) as error:  # nothing to report yet, or the service refused
            QMessageBox.warning(self, "Export failed", str(error))
            return
        self.statusBar().showMessage(f"Writing {path.name} in the background…", 8000)

    def _on_report_failed(self, message: str) -> None:
        if self.predict_page.report_cancelled:
            self.statusBar().showMessage(message, 8000)
        else:
            QMessageBox.warning(self, "Export failed", message)

    def _export(self, action: Callable[[], Path]) -> None:
        try:
            written = action()
        except (ValueError, OSError, PneumoDeskError) as error:  # nothing to report yet, the disk, or the service
            QMessageBox.warning(self, "Export failed", str(error))
            return
        self.statusBar().showMessage(f"Saved {written.name}", 8000)

    # --- shutdown ---
    def closeEvent(self, event: QCloseEvent) -> None:
        """Stop the batch after the image in hand and join every worker thread; verdicts are already on disk."""
        for _, page, _ in self._page_entries:
            page.shutdown()
        self.model_loader.stop()
        self.sessions.shutdown()
        if self._owns_node:
            self.node.close()
        super().closeEvent(event)
