"""The access gate shown instead of the workspace: first-start Owner set-up, sign-in, the idle lock, and password
changes (forced after a reset, or chosen from the Account menu).

The gate only collects what a person types and hands it to ``AccountService``; every rule (password rules, lockout,
Owner creation once only) is enforced there. Passwords are cleared from the fields as soon as they were used.
"""

from __future__ import annotations

from enum import StrEnum

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from pneumodesk.node import NodeError, NodeService, UserSession

from ..widgets.fields import password_field, rules_label, text_field


class GateMode(StrEnum):
    SETUP = "setup"
    SIGN_IN = "sign_in"
    LOCKED = "locked"
    CHANGE_PASSWORD = "change_password"


class _Panel(QFrame):
    """A centred card with a title, an explanation, a form, a message line and buttons."""

    def __init__(self, title: str, text: str) -> None:
        super().__init__()
        self.setObjectName("panel")
        self.setFixedWidth(520)  # fixed, so wrapped text gets its real height (no gaps)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(28, 24, 28, 24)
        layout.setSpacing(12)
        self.title = QLabel(f"<div style='font-size:16pt; font-weight:600'>{title}</div>")
        self.text = QLabel(text)
        self.text.setWordWrap(True)
        self.form = QFormLayout()
        self.message = QLabel()
        self.message.setObjectName("error_text")
        self.message.setWordWrap(True)
        self.message.setAccessibleName("Message")
        self.message.hide()
        self.buttons = QHBoxLayout()
        self.buttons.addStretch(1)
        for item in (self.title, self.text):
            layout.addWidget(item)
        layout.addLayout(self.form)
        layout.addWidget(self.message)
        layout.addLayout(self.buttons)

    def say(self, text: str, error: bool = True) -> None:
        """Show ``text`` under the form, in the error colour or the muted one (re-polished so the style applies)."""
        self.message.setObjectName("error_text" if error else "muted")
        self.message.style().unpolish(self.message)
        self.message.style().polish(self.message)
        self.message.setText(text)
        self.message.setVisible(bool(text))

    def button(self, text: str, name: str) -> QPushButton:
        button = QPushButton(text)
        button.setAccessibleName(name)
        self.buttons.addWidget(button)
        return button


class _OnePanel(QWidget):
    """Shows one panel at a time and sizes itself to that panel (a QStackedWidget takes the tallest one's size)."""

    def __init__(self) -> None:
        super().__init__()
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._panels: list[QWidget] = []
        self._current: QWidget | None = None

    def addWidget(self, panel: QWidget) -> None:
        self._panels.append(panel)
        self._layout.addWidget(panel)
        panel.setVisible(self._current is None)
        self._current = self._current or panel

    def setCurrentWidget(self, panel: QWidget) -> None:
        for other in self._panels:
            other.setVisible(other is panel)
        self._current = panel

    def currentWidget(self) -> QWidget | None:
        return self._current


class AccessGate(QWidget):
    """Emits ``signed_in`` after set-up + sign-in (or a forced password change), ``unlocked`` after the lock, and
    ``password_changed`` / ``change_cancelled`` for a voluntary change."""

    signed_in = Signal(object)  # UserSession
    unlocked = Signal(object)  # UserSession (refreshed)
    password_changed = Signal(object)  # UserSession
    change_cancelled = Signal()

    def __init__(self, node: NodeService, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.node = node
        self.session: UserSession | None = None
        self._forced = False
        self.stack = _OnePanel()
        outer = QVBoxLayout(self)
        outer.addStretch(1)
        brand = QLabel("<div style='font-size:28pt; font-weight:600'>PneumoDesk</div>"
                       "<div>On-device pneumonia detection on chest X-rays · decision support, not a diagnosis</div>")
        brand.setAlignment(Qt.AlignmentFlag.AlignCenter)
        outer.addWidget(brand)
        outer.addSpacing(18)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(self.stack)
        row.addStretch(1)
        outer.addLayout(row)
        outer.addStretch(2)
        self._build_setup()
        self._build_sign_in()
        self._build_lock()
        self._build_change()
        self.mode = GateMode.SIGN_IN

    # --- panels ---
    def _build_setup(self) -> None:
        p = self.setup_panel = _Panel(
            "Welcome to PneumoDesk",
            "This workstation has no accounts yet. Create the <b>Owner</b> account: the Owner manages who may use "
            "PneumoDesk and what each role may do. There is no default password.",
        )
        self.setup_username = text_field("Owner user name")
        self.setup_display = text_field("Owner display name")
        self.setup_password = password_field("Owner password")
        self.setup_repeat = password_field("Repeat the Owner password")
        for label, field in (("User name", self.setup_username), ("Display name", self.setup_display),
                             ("Password", self.setup_password), ("Repeat password", self.setup_repeat)):
            p.form.addRow(label, field)
        p.form.addRow("", rules_label())
        self.setup_button = p.button("Create Owner account", "Create the Owner account")
        self.setup_button.setDefault(True)
        self.setup_button.clicked.connect(self.create_owner)
        self.setup_repeat.returnPressed.connect(self.create_owner)
        self.stack.addWidget(p)

    def _build_sign_in(self) -> None:
        p = self.sign_in_panel = _Panel("Sign in", "Sign in with your PneumoDesk account.")
        self.username = text_field("User name")
        self.password = password_field("Password")
        p.form.addRow("User name", self.username)
        p.form.addRow("Password", self.password)
        self.sign_in_button = p.button("Sign in", "Sign in")
        self.sign_in_button.setDefault(True)
        self.sign_in_button.clicked.connect(self.sign_in)
        self.password.returnPressed.connect(self.sign_in)
        self.username.returnPressed.connect(self.password.setFocus)
        self.stack.addWidget(p)

    def _build_lock(self) -> None:
        p = self.lock_panel = _Panel("Locked", "")
        self.unlock_password = password_field("Password to unlock")
        p.form.addRow("Password", self.unlock_password)
        self.unlock_button = p.button("Unlock", "Unlock")
        self.unlock_button.clicked.connect(self.unlock)
        self.unlock_password.returnPressed.connect(self.unlock)
        self.stack.addWidget(p)

    def _build_change(self) -> None:
        p = self.change_panel = _Panel("Change your password", "")
        self.current_password = password_field("Current password")
        self.new_password = password_field("New password")
        self.repeat_password = password_field("Repeat the new password")
        for label, field in (("Current password", self.current_password), ("New password", self.new_password),
                             ("Repeat new password", self.repeat_password)):
            p.form.addRow(label, field)
        p.form.addRow("", rules_label())
        self.cancel_change_button = p.button("Cancel", "Cancel the password change")
        self.cancel_change_button.clicked.connect(self._cancel_change)
        self.change_button = p.button("Change password", "Change password")
        self.change_button.clicked.connect(self.change_password)
        self.repeat_password.returnPressed.connect(self.change_password)
        self.stack.addWidget(p)

    # --- modes ---
    @property
    def mode(self) -> GateMode:
        return self._mode

    @mode.setter
    def mode(self, mode: GateMode) -> None:
        self._mode = mode
        panel = {GateMode.SETUP: self.setup_panel, GateMode.SIGN_IN: self.sign_in_panel,
                 GateMode.LOCKED: self.lock_panel, GateMode.CHANGE_PASSWORD: self.change_panel}[mode]
        panel.say("")
        self.stack.setCurrentWidget(panel)
        focus = {GateMode.SETUP: self.setup_username, GateMode.SIGN_IN: self.username,
                 GateMode.LOCKED: self.unlock_password, GateMode.CHANGE_PASSWORD: self.current_password}[mode]
        if mode is GateMode.SIGN_IN and self.username.text():
            focus = self.password
        focus.setFocus()

    def start(self) -> None:
        """Set-up when the store has no Owner yet, else sign-in."""
        self.session = None
        self.mode = GateMode.SIGN_IN if self.node.accounts.has_owner() else GateMode.SETUP

    def lock(self, session: UserSession) -> None:
        self.session = session
        self.lock_panel.text.setText(
            f"PneumoDesk is locked. Signed in as <b>{session.display_name}</b> ({session.username}). "
            "Your worklist and any running batch are kept; enter your password to go on."
        )
        self.mode = GateMode.LOCKED

    def ask_password_change(self, session: UserSession, forced: bool) -> None:
        self.session, self._forced = session, forced
        self.change_panel.text.setText(
            "Your password was set by an administrator: choose your own before you go on." if forced
            else "Enter your current password and the new one."
        )
        self.cancel_change_button.setVisible(not forced)
        self.mode = GateMode.CHANGE_PASSWORD

    # --- actions ---
    def _fail(self, panel: _Panel, error: Exception, *fields: QLineEdit) -> None:
        panel.say(str(error))
        for field in fields:
            field.clear()

    def create_owner(self) -> None:
        p = self.setup_panel
        if self.setup_password.text() != self.setup_repeat.text():
            self._fail(p, ValueError("The two passwords differ."), self.setup_password, self.setup_repeat)
            return
        try:
            self.node.accounts.create_owner(self.setup_username.text(), self.setup_display.text(),
                                            self.setup_password.text())
        except NodeError as error:
            self._fail(p, error, self.setup_password, self.setup_repeat)
            return
        self.setup_password.clear()
        self.setup_repeat.clear()
        self.username.setText(self.setup_username.text().strip().lower())
        self.mode = GateMode.SIGN_IN
        self.sign_in_panel.say("The Owner account was created. Sign in with it.", error=False)

    def sign_in(self) -> None:
        try:
            session = self.node.accounts.authenticate(self.username.text(), self.password.text())
        except NodeError as error:
            self._fail(self.sign_in_panel, error, self.password)
            return
        self.password.clear()
        if session.must_change_password:
            self.ask_password_change(session, forced=True)
            return
        self.session = session
        self.signed_in.emit(session)

    def unlock(self) -> None:
        assert self.session is not None
        try:
            session = self.node.accounts.authenticate(self.session.username, self.unlock_password.text())
        except NodeError as error:
            self._fail(self.lock_panel, error, self.unlock_password)
            return
        self.unlock_password.clear()
        self.session = session
        self.unlocked.emit(session)

    def change_password(self) -> None:
        assert self.session is not None
        fields = (self.current_password, self.new_password, self.repeat_password)
        if self.new_password.text() != self.repeat_password.text():
            self._fail(self.change_panel, ValueError("The two new passwords differ."), *fields)
            return
        try:
            session = self.node.accounts.change_password(self.session, self.current_password.text(),
                                                         self.new_password.text())
        except NodeError as error:
            self._fail(self.change_panel, error, *fields)
            return
        for field in fields:
            field.clear()
        self.session = session
        if self._forced:
            self._forced = False
            self.signed_in.emit(session)
        else:
            self.password_changed.emit(session)

    def _cancel_change(self) -> None:
        for field in (self.current_password, self.new_password, self.repeat_password):
            field.clear()
        self.change_cancelled.emit()


__all__ = ["AccessGate", "GateMode"]
