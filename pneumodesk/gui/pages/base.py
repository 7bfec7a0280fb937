"""``SessionPage``: how every page of the main window takes the signed-in session and reads its data.

The one protocol: the window calls ``set_session(session)`` on every page at sign-in, unlock, password change and
after an account change, and ``set_session(None)`` at sign-out; ``shutdown()`` when the window closes.

Invariant: a page reads its data when it becomes visible after its session changed (or at once, if it is on screen
when the session changes), never while it is hidden; signing in therefore stays quick however many pages there are.
"""

from __future__ import annotations

from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import QWidget

from pneumodesk.node import UserSession


class SessionPage(QWidget):
    """A page that shows data for the signed-in user and re-reads it lazily (see the module docstring).

    Subclasses provide ``refresh`` (which reads and shows the data, clearing ``_stale``); they override
    ``may_refresh`` when reading needs a permission, ``session_changed`` for what must follow the session at once
    (buttons shown or hidden, data of a signed-out user cleared), and ``shutdown`` when they own threads.
    """

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
        self.session_changed()
        if self.isVisible() and self.may_refresh():
            self.refresh()

    def session_changed(self) -> None:
        """What follows a new session at once, before any refresh (nothing by default)."""

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if self._stale and self.may_refresh():
            self.refresh()

    def refresh(self) -> None:
        """Read and show the data for ``session``, setting ``_stale`` to False (a page with nothing to read just
        marks itself fresh)."""
        self._stale = False

    def shutdown(self) -> None:
        """Join any thread the page owns; after it, the page starts no more work (nothing by default)."""


__all__ = ["SessionPage"]
