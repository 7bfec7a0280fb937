"""Taking part in training from the Federation page: Start / Pause / Cancel for one approved plan, with the round,
a progress bar and the engine's status in words ("Coordinator unreachable, retrying in 10 s").

``pneumodesk.client.ParticipationEngine.run`` blocks for the whole plan, so it runs in a QThread; its status
callbacks cross to the GUI thread by signal. The engine checks the approval, the policy and the privacy budget
before every round; this panel only offers plans that are approved here.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QThread, Signal, Slot
from PySide6.QtWidgets import (
    QComboBox,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from pneumodesk.federation.vocabulary import MembershipStatus
from pneumodesk.node import NodeService, Permission, UserSession

from ..workers.participation import ParticipationWorker
from ..workers.threads import start_in_thread

if TYPE_CHECKING:
    from pneumodesk.client import EngineResult, EngineStatus, ParticipationEngine
    from pneumodesk.node.membership import Membership

if TYPE_CHECKING:
    from pneumodesk.client.keys import NodeKeyStore

POLL_TIMEOUT_S = 10.0  # the engine's long poll (Cancel and closing the window end it at once)


class ParticipationPanel(QGroupBox):
    status_changed = Signal(object)  # EngineStatus (GUI thread)
    finished = Signal(object)  # EngineResult (GUI thread)
    round_finished = Signal()  # an update was sent (the egress log has new rows)

    def __init__(self, node: NodeService, home: Path, parent: QWidget | None = None, *,
                 key_store: NodeKeyStore | None = None) -> None:
        super().__init__("Take part in training", parent)
        self.node, self.home, self.key_store = node, home, key_store
        self.session: UserSession | None = None
        self.membership: Membership | None = None
        self.engine: ParticipationEngine | None = None
        self.engine_options: dict[str, Any] = {"poll_timeout": POLL_TIMEOUT_S}  # EngineOptions keywords
        self.last_status: EngineStatus | None = None
        self._thread: QThread | None = None
        self._worker: ParticipationWorker | None = None

        layout = QVBoxLayout(self)
        row = QHBoxLayout()
        row.addWidget(QLabel("Approved plan"))
        self.plan_choice = QComboBox()
        self.plan_choice.setAccessibleName("Approved plan to take part in")
        row.addWidget(self.plan_choice, 1)
        layout.addLayout(row)
        buttons = QHBoxLayout()
        self.start_button = QPushButton("Start")
        self.start_button.setAccessibleName("Start taking part")
        self.start_button.clicked.connect(self.start)
        self.pause_button = QPushButton("Pause")
        self.pause_button.setCheckable(True)
        self.pause_button.toggled.connect(self.set_paused)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setAccessibleName("Stop taking part")
        self.cancel_button.clicked.connect(self.cancel)
        for button in (self.start_button, self.pause_button, self.cancel_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        layout.addLayout(buttons)
        self.round_label = QLabel("Round: —")
        self.round_label.setAccessibleName("Round")
        self.progress = QProgressBar()
        self.progress.setAccessibleName("Training progress")
        self.progress.setRange(0, 100)
        self.status_label = QLabel("Not running.")
        self.status_label.setAccessibleName("Training status")
        self.status_label.setWordWrap(True)
        for widget in (self.round_label, self.progress, self.status_label):
            layout.addWidget(widget)
        layout.addStretch(1)
        self._update_buttons()

    # --- state ---
    @property
    def running(self) -> bool:
        return self._thread is not None

    def set_session(self, session: UserSession | None) -> None:
        self.session = session
        self._update_buttons()

    def set_membership(self, membership: Membership | None) -> None:
        self.membership = membership
        self._update_buttons()

    def set_plans(self, plans: list[tuple[str, str]]) -> None:
        """The plans offered that are approved here: (sha256, name)."""
        current = self.plan_choice.currentData()
        self.plan_choice.clear()
        for sha, name in plans:
            self.plan_choice.addItem(f"{name} ({sha[:12]}…)", sha)
        index = self.plan_choice.findData(current)
        self.plan_choice.setCurrentIndex(index if index >= 0 else 0)
        self._update_buttons()

    def _update_buttons(self) -> None:
        allowed = self.session is not None and self.session.can(Permission.MANAGE_FEDERATION)
        approved = self.membership is not None and self.membership.status == MembershipStatus.APPROVED
        self.start_button.setEnabled(allowed and approved and not self.running and self.plan_choice.count() > 0)
        self.pause_button.setEnabled(self.running)
        self.cancel_button.setEnabled(self.running)
        self.plan_choice.setEnabled(not self.running)
        if not self.running and self.pause_button.isChecked():
            self.pause_button.blockSignals(True)
            self.pause_button.setChecked(False)
            self.pause_button.setText("Pause")
            self.pause_button.blockSignals(False)

    # --- control ---
    def start(self) -> bool:
        """Start the engine for the chosen plan in a background thread."""
        from pneumodesk.client import EngineOptions, ParticipationEngine

        sha = self.plan_choice.currentData()
        if self.running or not sha:
            return False
        self.engine = ParticipationEngine(self.node, sha, home=self.home, options=EngineOptions(**self.engine_options),
                                          key_store=self.key_store)
        worker = ParticipationWorker(self.engine)
        worker.status.connect(self._on_status)
        worker.finished.connect(self._on_finished)
        self._worker = worker
        self._thread = start_in_thread(worker, "pneumodesk-participation")
        self.progress.setValue(0)
        self.status_label.setText("Starting…")
        self._update_buttons()
        return True

    def set_paused(self, paused: bool) -> None:
        if self.engine is None:
            return
        if paused:
            self.engine.pause()
            self.pause_button.setText("Resume")
            self.status_label.setText("Pausing after the current step…")
        else:
            self.engine.resume()
            self.pause_button.setText("Pause")

    def cancel(self) -> None:
        """Ask the engine to stop; a round in progress resumes on the next start (the engine keeps its state)."""
        if self.engine is not None:
            self.engine.stop()
            self.status_label.setText("Stopping…")

    @Slot(object)
    def _on_status(self, status: EngineStatus) -> None:
        if self.sender() is not self._worker:
            return
        self.last_status = status
        self.status_label.setText(status.message)
        if status.round_number is not None:
            self.round_label.setText(f"Round: {status.round_number} · rounds trained in this run: "
                                     f"{status.rounds_trained}")
        if status.progress is not None:
            self.progress.setValue(round(status.progress * 100))
        if str(status.phase) == "submitted":
            self.progress.setValue(100)
            self.round_finished.emit()
        self.status_changed.emit(status)

    @Slot(object)
    def _on_finished(self, result: EngineResult) -> None:
        if self.sender() is not self._worker:
            return
        self._join()
        self.status_label.setText(result.message)
        self._update_buttons()
        self.round_finished.emit()
        self.finished.emit(result)

    def _join(self) -> None:
        thread, self._thread, self._worker, self.engine = self._thread, None, None, None
        if thread is not None:
            thread.quit()
            thread.wait()

    def shutdown(self) -> None:
        """Stop the engine (it ends after the step in hand, keeping its state for the next start) and join it."""
        if self.engine is not None:
            self.engine.stop()
        self._join()
        self._update_buttons()


__all__ = ["POLL_TIMEOUT_S", "ParticipationPanel"]
