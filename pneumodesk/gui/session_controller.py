"""``SessionController``: who is signed in. It owns the access gate (Owner set-up, sign-in, lock screen, password
changes) and the idle lock, and tells the window each time the session changes.

Invariants: the workspace is shown only while a session is applied and the gate is down; locking keeps the session
(and everything in the workspace, running batch included) and only the same user's password lifts it; every lock is
audited. The controller refuses nothing itself: ``AccountService`` enforces every rule.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QApplication, QDialog

from pneumodesk.node import NodeError, NodeService, UserSession

from .dialogs.gate import AccessGate
from .idle_lock import IdleWatcher


class SessionController(QObject):
    """Sign-in, idle lock, unlock, password change and sign-out; the window listens and shows what it says."""

    session_changed = Signal(object, bool)  # UserSession | None, and whether it is another user than before
    gate_shown = Signal(bool)  # True: the gate covers the workspace; False: the workspace is on screen
    signed_in = Signal(object)  # UserSession: set-up + sign-in (or a forced password change) completed
    locked = Signal()
    unlocked = Signal()
    password_changed = Signal(object)  # UserSession (a voluntary change)

    def __init__(self, node: NodeService, lock_minutes: int, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.node = node
        self.session: UserSession | None = None
        self._gate_up = True
        self.gate = AccessGate(node)
        self.gate.signed_in.connect(self._on_signed_in)
        self.gate.unlocked.connect(self._on_unlocked)
        self.gate.password_changed.connect(self._on_password_changed)
        self.gate.change_cancelled.connect(self._show_workspace)
        self.idle = IdleWatcher(lock_minutes * 60_000, self)
        self.idle.idle.connect(self.lock)

    @property
    def is_locked(self) -> bool:
        """A session is kept but the gate covers the workspace (lock screen or password change)."""
        return self.session is not None and self._gate_up

    @property
    def workspace_open(self) -> bool:
        return self.session is not None and not self._gate_up

    def set_lock_minutes(self, minutes: int) -> None:
        self.idle.set_timeout_ms(minutes * 60_000)

    # --- transitions ---
    def apply(self, session: UserSession) -> None:
        """Open the workspace for ``session`` (announced first, so the pages have it before they show)."""
        another_user = self.session is None or self.session.user_id != session.user_id
        self.session = session
        self.gate.session = session
        self.session_changed.emit(session, another_user)
        self._show_workspace()

    def sign_out(self) -> None:
        """Forget the session and show set-up (no Owner yet) or sign-in."""
        self.session = None
        self.session_changed.emit(None, True)
        self.gate.start()
        self._show_gate()

    def lock(self) -> None:
        """Cover the workspace with the lock screen; the worklist, viewer and any running batch stay as they are.
        Open dialogs (a file dialog shows folder names) are closed."""
        if self.session is None or self.is_locked:
            return
        for widget in QApplication.topLevelWidgets():
            if isinstance(widget, QDialog) and widget.isVisible():
                widget.reject()
        self.gate.lock(self.session)
        self._show_gate()
        self.node.audit.append(self.session.username, "screen_locked", self.session.username)
        self.locked.emit()

    def change_password(self) -> None:
        if self.session is not None:
            self.gate.ask_password_change(self.session, forced=False)
            self._show_gate()

    def refresh(self) -> None:
        """After an account or role change: re-read the signed-in account (its own role may have changed); an
        account that can no longer be read (disabled, removed) is signed out."""
        if self.session is None:
            return
        try:
            session = self.node.accounts.refresh(self.session)
        except NodeError:
            self.sign_out()
            return
        self.apply(session)

    def shutdown(self) -> None:
        self.idle.detach()

    # --- the gate's outcomes ---
    def _on_signed_in(self, session: UserSession) -> None:
        self.apply(session)
        self.signed_in.emit(session)

    def _on_unlocked(self, session: UserSession) -> None:
        self.apply(session)
        self.unlocked.emit()

    def _on_password_changed(self, session: UserSession) -> None:
        self.apply(session)
        self.password_changed.emit(session)

    def _show_workspace(self) -> None:
        self._gate_up = False
        self.gate_shown.emit(False)
        self.idle.start()

    def _show_gate(self) -> None:
        self.idle.stop()
        self._gate_up = True
        self.gate_shown.emit(True)


__all__ = ["SessionController"]
