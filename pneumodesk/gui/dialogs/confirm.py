"""The yes/no question asked before something that cannot be undone (remove a dataset, leave the federation)."""

from __future__ import annotations

from PySide6.QtWidgets import QMessageBox, QWidget


def ask_yes_no(parent: QWidget, title: str, text: str) -> bool:
    """True only for an explicit Yes; No is the default button."""
    answer = QMessageBox.question(parent, title, text, QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                                  QMessageBox.StandardButton.No)
    return answer == QMessageBox.StandardButton.Yes


__all__ = ["ask_yes_no"]
