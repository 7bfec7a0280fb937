"""Form fields and labels the pages and the gate share: text and password fields, the password rules, the muted
message line."""

from __future__ import annotations

from PySide6.QtWidgets import QLabel, QLineEdit

from pneumodesk.node.passwords import PASSWORD_RULES


def password_field(name: str) -> QLineEdit:
    field = QLineEdit()
    field.setEchoMode(QLineEdit.EchoMode.Password)
    field.setAccessibleName(name)
    field.setMinimumWidth(280)
    return field


def text_field(name: str) -> QLineEdit:
    field = QLineEdit()
    field.setAccessibleName(name)
    field.setMinimumWidth(280)
    return field


def rules_label() -> QLabel:
    label = QLabel("Passwords need " + "; ".join(PASSWORD_RULES) + ".")
    label.setObjectName("muted")
    label.setWordWrap(True)
    return label


def message_label(accessible_name: str) -> QLabel:
    """The page's muted, word-wrapped message line (pages may switch its object name to show an error)."""
    label = QLabel()
    label.setObjectName("muted")
    label.setAccessibleName(accessible_name)
    label.setWordWrap(True)
    return label


def show_message(label: QLabel, text: str, error: bool = False) -> None:
    """Show ``text`` on a message line, in the error colour or the muted one (re-polished so the style applies)."""
    label.setObjectName("error_text" if error else "muted")
    label.style().unpolish(label)
    label.style().polish(label)
    label.setText(text)


__all__ = ["message_label", "password_field", "rules_label", "show_message", "text_field"]
