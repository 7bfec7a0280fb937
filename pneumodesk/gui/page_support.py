"""What the admin pages share: the session hand-over, the read-only table and the muted message line.

Invariant of ``SessionPage``: a page reads its data when it becomes visible after its session changed (or at once,
if it is on screen when the session changes), never while it is hidden; signing in therefore stays quick however
many pages there are.
"""

from __future__ import annotations

from typing import Literal

from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QLabel, QTableWidget, QWidget

from pneumodesk.node import UserSession


class SessionPage(QWidget):
    """A page that shows data for the signed-in user and re-reads it lazily (see the module docstring)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session: UserSession | None = None
        self._stale = True  # the data shown is not (or no longer) that of ``session``; ``refresh`` clears it

    def may_refresh(self) -> bool:
        """Whether there is something to read: a session (a page that needs a permission to read overrides this)."""
        return self.session is not None

    def set_session(self, session: UserSession | None) -> None:
        self.session = session
        self._stale = True
        if self.isVisible() and self.may_refresh():
            self.refresh()

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if self._stale and self.may_refresh():
            self.refresh()

    def refresh(self) -> None:
        """Read and show the data for ``session``, setting ``_stale`` to False; each page provides it."""
        raise NotImplementedError


def read_only_table(accessible_name: str, columns: tuple[str, ...], *, single_selection: bool = True,
                    stretch: Literal["last", "first", "all"] = "last") -> QTableWidget:
    """An empty table with ``columns``, not editable, selected by whole rows (one at a time unless
    ``single_selection`` is False). ``stretch`` says which columns take the spare width: the last or the first
    (the others fit their contents), or all of them equally."""
    table = QTableWidget(0, len(columns))
    table.setAccessibleName(accessible_name)
    table.setHorizontalHeaderLabels(columns)
    table.verticalHeader().hide()
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    if single_selection:
        table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    header = table.horizontalHeader()
    if stretch == "all":
        header.setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
    else:
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        if stretch == "last":
            header.setStretchLastSection(True)
        else:
            header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
    return table


def message_label(accessible_name: str) -> QLabel:
    """The page's muted, word-wrapped message line (pages may switch its object name to show an error)."""
    label = QLabel()
    label.setObjectName("muted")
    label.setAccessibleName(accessible_name)
    label.setWordWrap(True)
    return label


__all__ = ["SessionPage", "message_label", "read_only_table"]
