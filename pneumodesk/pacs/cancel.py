"""``CancelToken``: a flag the GUI or CLI sets from any thread; retrievals check it between instances."""

from __future__ import annotations

import threading


class CancelToken:
    """Once ``cancel()`` is called, ``cancelled`` stays True; a retrieval stops before its next instance."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()
