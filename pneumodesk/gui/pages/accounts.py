"""The Accounts page (manage_accounts): list, create, disable/enable, unlock, reset password, change role; and the
role editor, shown to Owners only. Every button calls ``AccountService``, which re-checks the permission."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from pneumodesk.node import AccountView, NodeError, NodeService, UserSession
from pneumodesk.node.models import utcnow
from pneumodesk.node.permissions import Permission

from ..widgets.fields import message_label, password_field, rules_label, text_field
from ..widgets.role_editor import RoleEditor
from ..widgets.tables import read_only_table
from .base import SessionPage

COLUMNS = ("User", "Name", "Role", "State", "Last sign-in")


def account_state(account: AccountView) -> str:
    if account.disabled:
        return "disabled"
    state = "locked" if account.locked(utcnow()) else "active"
    return state + (" · must change password" if account.must_change_password else "")


class AccountsPage(SessionPage):
    changed = Signal()  # an account or role changed (the window refreshes the signed-in session)

    def __init__(self, node: NodeService, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.node = node
        self.accounts: list[AccountView] = []
        outer = QVBoxLayout(self)
        outer.setContentsMargins(24, 20, 24, 12)
        outer.addWidget(QLabel("<h2>Accounts</h2>"))
        self.table = read_only_table("Accounts", COLUMNS, stretch="all")
        outer.addWidget(self.table, 2)

        row = QHBoxLayout()
        self.disable_button = QPushButton("Disable")
        self.enable_button = QPushButton("Enable")
        self.unlock_button = QPushButton("Unlock")
        self.role_choice = QComboBox()
        self.role_choice.setAccessibleName("New role for the selected account")
        self.role_button = QPushButton("Change role")
        self.reset_field = password_field("Temporary password for the selected account")
        self.reset_field.setPlaceholderText("temporary password")
        self.reset_button = QPushButton("Reset password")
        self.disable_button.clicked.connect(lambda: self._on_selected(lambda n: self._service_disable(n, True)))
        self.enable_button.clicked.connect(lambda: self._on_selected(lambda n: self._service_disable(n, False)))
        self.unlock_button.clicked.connect(lambda: self._on_selected(self._service_unlock))
        self.role_button.clicked.connect(lambda: self._on_selected(self._service_role))
        self.reset_button.clicked.connect(lambda: self._on_selected(self._service_reset))
        for widget in (QLabel("Selected:"), self.disable_button, self.enable_button, self.unlock_button,
                       self.role_choice, self.role_button, self.reset_field, self.reset_button):
            row.addWidget(widget)
        row.addStretch(1)
        outer.addLayout(row)

        create = QGroupBox("New account")
        form = QFormLayout(create)
        self.new_username = text_field("New account's user name")
        self.new_display = text_field("New account's display name")
        self.new_role = QComboBox()
        self.new_role.setAccessibleName("New account's role")
        self.new_password = password_field("New account's initial password")
        self.create_button = QPushButton("Create account")
        self.create_button.clicked.connect(self.create_account)
        form.addRow("User name", self.new_username)
        form.addRow("Display name", self.new_display)
        form.addRow("Role", self.new_role)
        form.addRow("Initial password", self.new_password)
        form.addRow("", rules_label())
        form.addRow("", self.create_button)
        self.roles_box = QGroupBox("Roles (Owner only): what each role may do")
        roles_layout = QVBoxLayout(self.roles_box)
        self.role_editor = RoleEditor()
        self.role_editor.role_edited.connect(self.save_role)
        roles_layout.addWidget(self.role_editor)
        lower = QHBoxLayout()
        lower.addWidget(create, 1)
        lower.addWidget(self.roles_box, 2)
        outer.addLayout(lower, 2)
        self.message = message_label("Accounts message")
        outer.addWidget(self.message)

    # --- session (reading on show: SessionPage) ---
    def may_refresh(self) -> bool:
        return self.session is not None and self.session.can(Permission.MANAGE_ACCOUNTS)

    def session_changed(self) -> None:
        self.roles_box.setVisible(bool(self.session and self.session.is_owner))

    def refresh(self) -> None:
        if self.session is None:
            return
        self._stale = False
        try:
            self.accounts = self.node.accounts.list_accounts(self.session)
        except NodeError as error:
            self.message.setText(str(error))
            return
        roles = self.node.accounts.roles()
        for combo in (self.role_choice, self.new_role):
            current = combo.currentText()
            combo.clear()
            combo.addItems(list(roles))
            combo.setCurrentIndex(max(combo.findText(current), 0))
        self.role_editor.set_roles(roles)
        self.table.setRowCount(len(self.accounts))
        for r, account in enumerate(self.accounts):
            last = account.last_login.astimezone().strftime("%Y-%m-%d %H:%M") if account.last_login else "never"
            for c, text in enumerate((account.username, account.display_name, account.role,
                                      account_state(account), last)):
                self.table.setItem(r, c, QTableWidgetItem(text))

    def select(self, username: str) -> None:
        names = [a.username for a in self.accounts]
        self.table.selectRow(names.index(username))

    def selected(self) -> str | None:
        rows = self.table.selectionModel().selectedRows()
        return self.accounts[rows[0].row()].username if rows else None

    # --- actions (each reports the outcome in plain words) ---
    def _do(self, action: Callable[[UserSession], object], done: str) -> bool:
        """Run ``action`` with the signed-in session; say ``done``, or the service's refusal, in plain words."""
        if self.session is None:
            return False
        try:
            action(self.session)
        except NodeError as error:
            self.message.setText(str(error))
            return False
        self.message.setText(done)
        selected = self.selected()
        self.refresh()
        if selected:
            self.select(selected)
        self.changed.emit()
        return True

    def _on_selected(self, action: Callable[[str], None]) -> None:
        name = self.selected()
        if name is None:
            self.message.setText("Select an account first.")
            return
        action(name)

    def _service_disable(self, name: str, disabled: bool) -> None:
        self._do(lambda session: self.node.accounts.set_disabled(session, name, disabled),
                 f"{name} is now {'disabled' if disabled else 'enabled'}.")

    def _service_unlock(self, name: str) -> None:
        self._do(lambda session: self.node.accounts.unlock(session, name), f"{name} is unlocked.")

    def _service_role(self, name: str) -> None:
        role = self.role_choice.currentText()
        self._do(lambda session: self.node.accounts.set_role(session, name, role), f"{name} now has the role {role}.")

    def _service_reset(self, name: str) -> None:
        password = self.reset_field.text()
        self.reset_field.clear()
        self._do(lambda session: self.node.accounts.reset_password(session, name, password),
                 f"{name}'s password was reset; they must change it at their next sign-in.")

    def create_account(self) -> bool:
        name, role, password = self.new_username.text(), self.new_role.currentText(), self.new_password.text()
        self.new_password.clear()
        display = self.new_display.text()
        ok = self._do(lambda session: self.node.accounts.create_account(session, name, display, role, password),
                      f"Created {name.strip().lower()} ({role}); they must change the password at first sign-in.")
        if ok:
            self.new_username.clear()
            self.new_display.clear()
        return ok

    def save_role(self, role: str, permissions: frozenset[Permission]) -> None:
        if not self._do(lambda session: self.node.accounts.set_role_permissions(session, role, permissions),
                        f"Saved what the role {role} may do."):
            self.role_editor.set_roles(self.node.accounts.roles())
