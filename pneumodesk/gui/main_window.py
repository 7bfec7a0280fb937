"""The shell: navigation sidebar, page stack, menus and shortcuts, status bar, model loading and clean shutdown;
and the access gate in front of it all (first-start Owner set-up, sign-in, idle lock, password change).

Later features add their pages with ``add_page``, naming the permission that shows them. The window only *hides*
what the signed-in role may not do; ``pneumodesk.node`` refuses it anyway.
"""

from __future__ import annotations

import gc
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QThread, Signal
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
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
from pneumodesk.node import NodeError, NodeService, Permission, UserSession

from .accounts_page import AccountsPage
from .approvals_page import ApprovalsPage
from .audit_page import AuditPage
from .datasets_page import DatasetsPage
from .dialogs import IntendedUseNotice, ModelCardDialog, ShortcutsDialog
from .export import default_export_name
from .federation_page import FederationPage
from .gate import AccessGate
from .idle_lock import IdleWatcher
from .models_page import ModelsPage
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

#: Actions shown only to roles holding the permission (the service refuses them to anyone else anyway).
ACTION_PERMISSIONS: dict[str, Permission] = {
    "open_files": Permission.PREDICT,
    "open_folder": Permission.PREDICT,
    "export_pdf": Permission.EXPORT_REPORTS,
    "export_csv": Permission.EXPORT_REPORTS,
    "agree": Permission.REVIEW,
    "disagree": Permission.REVIEW,
    "clear_verdict": Permission.REVIEW,
}


class MainWindow(QMainWindow):
    """One window per app. ``home`` (or $PNEUMODESK_HOME) holds settings, verdicts and the node store; ``bundle``
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
        self.home = app_home(home)
        # An explicit ``bundle`` is also what the local model registry starts from (its model 1).
        self.node = node if node is not None else NodeService.open(self.home, default_bundle=bundle)
        self._owns_node = node is None
        self.session: UserSession | None = None
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
        self._page_entries: list[tuple[str, QWidget, Permission | None]] = []
        self._shown_pages: list[QWidget] = []
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
        self.gate = AccessGate(self.node)
        self.gate.signed_in.connect(self._on_signed_in)
        self.gate.unlocked.connect(self._on_unlocked)
        self.gate.password_changed.connect(self._on_password_changed)
        self.gate.change_cancelled.connect(self._show_workspace)
        self.root = QStackedWidget()
        self.root.addWidget(self.workspace)
        self.root.addWidget(self.gate)
        self.setCentralWidget(self.root)

        self.predict_page = PredictPage(self.settings, self.verdicts)
        self.predict_page.model.set_colours(self.colours.positive, self.colours.negative, self.colours.error)
        self.settings_page = SettingsPage(self.settings, str(self.verdicts.path))
        self.settings_page.theme_changed.connect(self.set_theme)
        self.settings_page.operating_point_changed.connect(self.set_operating_point)
        self.settings_page.opacity_changed.connect(self.predict_page.viewer.set_opacity)
        self.predict_page.viewer.opacity_changed.connect(self.settings_page.set_opacity)
        self.settings_page.lock_minutes_changed.connect(lambda m: self.idle.set_timeout_ms(m * 60_000))
        self.accounts_page = AccountsPage(self.node)
        self.accounts_page.changed.connect(self._refresh_session)
        self.audit_page = AuditPage(self.node)
        self.datasets_page = DatasetsPage(self.node)
        self.federation_page = FederationPage(self.node, self.home)
        self.approvals_page = ApprovalsPage(self.node)
        self.models_page = ModelsPage(self.node)
        self.models_page.active_model_changed.connect(self.reload_model)
        self.datasets_page.changed.connect(lambda: self.approvals_page.set_session(self.session))
        self.federation_page.approvals_changed.connect(lambda: self.approvals_page.set_session(self.session))
        self.approvals_page.changed.connect(self.federation_page.approvals_updated)
        self.federation_page.participation.finished.connect(self._on_participation_finished)
        self.add_page("Predict", self.predict_page, Permission.PREDICT)
        self.add_page("Datasets", self.datasets_page, Permission.MANAGE_DATASETS)
        self.add_page("Federation", self.federation_page, Permission.MANAGE_FEDERATION)
        self.add_page("Training", self.approvals_page, Permission.APPROVE_TRAINING)
        self.add_page("Models", self.models_page, Permission.APPROVE_TRAINING)
        self.add_page("Accounts", self.accounts_page, Permission.MANAGE_ACCOUNTS)
        self.add_page("Audit", self.audit_page, Permission.VIEW_AUDIT)
        self.add_page("Settings", self.settings_page)
        self.idle = IdleWatcher(self.settings.lock_minutes * 60_000, self)
        self.idle.idle.connect(self.lock)

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
        self._build_actions()
        if session is not None:
            self.apply_session(session)
        else:
            self.sign_out()

        self._loader: ModelLoader | None = None
        self._loader_thread: QThread | None = None
        self._load_model(bundle)

    # --- pages ---
    def add_page(self, title: str, widget: QWidget, permission: Permission | None = None) -> int:
        """Add a page, listed in the sidebar only while the signed-in role holds ``permission`` (None: always)."""
        self._page_entries.append((title, widget, permission))
        index = self.pages.addWidget(widget)
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
        row = self._shown_pages.index(current) if current in self._shown_pages else 0
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

    # --- access ---
    def apply_session(self, session: UserSession) -> None:
        """Show the workspace for ``session``: the pages and actions its role allows; start the idle timer."""
        new_user = self.session is None or self.session.user_id != session.user_id
        self.session = session
        self.gate.session = session
        self.predict_page.set_access(self.node.clinical, session)
        self.accounts_page.set_session(session)
        self.audit_page.set_session(session)
        for page in self._admin_pages():
            page.set_session(session)
        self._rebuild_sidebar(first_page=new_user)
        self._apply_action_permissions()
        self.predict_page.viewer.agree.setVisible(session.can(Permission.REVIEW))
        self.predict_page.viewer.disagree.setVisible(session.can(Permission.REVIEW))
        for button in (self.predict_page.open_files_button, self.predict_page.open_folder_button):
            button.setVisible(session.can(Permission.PREDICT))
        self.account_label.setText(f"{session.display_name} · {session.role}")
        self._show_workspace()

    def _on_signed_in(self, session: UserSession) -> None:
        self.apply_session(session)
        self.signed_in.emit(session)

    def _apply_action_permissions(self) -> None:
        session, open_ = self.session, self.root.currentWidget() is self.workspace
        for command_id, action in self.actions_by_id.items():
            needed = ACTION_PERMISSIONS.get(command_id)
            allowed = command_id == "quit" or (session is not None and (needed is None or session.can(needed)))
            action.setVisible(allowed)
            action.setEnabled(allowed and (open_ or command_id == "quit"))

    def _show_workspace(self) -> None:
        self.root.setCurrentWidget(self.workspace)
        self._apply_action_permissions()
        self.idle.start()

    def _show_gate(self) -> None:
        self.idle.stop()
        self.root.setCurrentWidget(self.gate)
        self._apply_action_permissions()

    @property
    def is_locked(self) -> bool:
        return self.session is not None and self.root.currentWidget() is self.gate

    def lock(self) -> None:
        """Hide the workspace behind the lock screen; the worklist, viewer and any running batch stay as they are."""
        if self.session is None or self.is_locked:
            return
        for widget in QApplication.topLevelWidgets():  # e.g. an open file dialog showing folder names
            if isinstance(widget, QDialog) and widget.isVisible():
                widget.reject()
        self.gate.lock(self.session)
        self._show_gate()
        self.node.audit.append(self.session.username, "screen_locked", self.session.username)
        self.locked.emit()

    def _on_unlocked(self, session: UserSession) -> None:
        self.apply_session(session)
        self.unlocked.emit()

    def sign_out(self) -> None:
        """Forget the session and show set-up (no Owner yet) or sign-in."""
        self.session = None
        self.predict_page.set_access(None, None)
        self.accounts_page.set_session(None)
        self.audit_page.set_session(None)
        for page in self._admin_pages():
            page.set_session(None)
        self.account_label.setText("not signed in")
        self._rebuild_sidebar()
        self.gate.start()
        self._show_gate()

    def change_password(self) -> None:
        if self.session is not None:
            self.gate.ask_password_change(self.session, forced=False)
            self._show_gate()

    def _on_password_changed(self, session: UserSession) -> None:
        self.apply_session(session)
        self.statusBar().showMessage("Your password was changed.", 8000)

    def _refresh_session(self) -> None:
        """After an account or role change: re-read the signed-in account (its own role may have changed)."""
        if self.session is None:
            return
        try:
            self.apply_session(self.node.accounts.refresh(self.session))
        except NodeError:
            self.sign_out()

    def set_filter(self, mode: FilterMode) -> None:
        combo = self.predict_page.filter
        combo.setCurrentIndex(combo.findData(mode.value))

    def _on_participation_finished(self, result: object) -> None:
        """Training ended: the ledger and the model registry changed; say so if new models wait for review."""
        for page in (self.approvals_page, self.models_page):
            page.set_session(self.session)
        waiting = len(getattr(result, "candidates", ()))
        if waiting:
            self.statusBar().showMessage(f"{waiting} new model(s) wait for review on the Models page.", 15000)

    def _admin_pages(self) -> tuple[DatasetsPage, FederationPage, ApprovalsPage, ModelsPage]:
        return (self.datasets_page, self.federation_page, self.approvals_page, self.models_page)

    # --- model ---
    def _load_model(self, bundle: Path | None) -> None:
        """Load ``bundle`` (or else the node's active model, or else the bundled default) in the background."""
        self._finish_loader()
        locate = None if bundle is not None else self.node.models.active_bundle_dir
        self._loader = ModelLoader(bundle, self.settings.operating_point, locate)
        self._loader.loaded.connect(self._on_model_loaded)
        self._loader.failed.connect(self._on_model_failed)
        self._loader_thread = start_in_thread(self._loader, "pneumodesk-model-loader")

    def reload_model(self) -> None:
        """After a model was accepted or restored: predict with the node's active model from now on (results
        already in the worklist keep the model that computed them)."""
        self.model_label.setText("Model: loading…")
        self._load_model(None)

    def _finish_loader(self) -> None:
        if self._loader_thread is not None:
            self._loader_thread.quit()
            self._loader_thread.wait()
            self._loader_thread = None
            self._loader = None

    def _from_old_loader(self) -> bool:
        """A result of a loader that a newer one replaced (it is dropped)."""
        sender = self.sender()
        return sender is not None and sender is not self._loader

    def _on_model_loaded(self, batch: Predictor, viewer: Predictor) -> None:
        if self._from_old_loader():
            return
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
        if self._from_old_loader():
            return
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
        except (ValueError, OSError, NodeError) as error:
            QMessageBox.warning(self, "Export failed", str(error))
            return
        self.statusBar().showMessage(f"Saved {written.name}", 8000)

    # --- shutdown ---
    def closeEvent(self, event: QCloseEvent) -> None:
        """Stop the batch after the image in hand and join every worker thread; verdicts are already on disk."""
        self.predict_page.shutdown()
        for page in self._admin_pages():
            page.shutdown()
        self._finish_loader()
        self.idle.detach()
        if self._owns_node:
            self.node.close()
        super().closeEvent(event)
