"""One-off background calls for the admin pages (scan a dataset, enrol, compute a privacy cost): the call runs in a
QThread, its outcome comes back to the GUI thread by signal, and errors arrive as plain sentences.

Invariant: at most one call per ``BackgroundCalls`` owner runs at a time (an admin page does one slow thing at once),
and ``shutdown()`` joins it, so closing the window never leaves a thread writing to the node store.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal, Slot

from pneumodesk.errors import PneumoDeskError

from .threads import start_in_thread

log = logging.getLogger(__name__)

#: A call receives a ``report(done, total)`` function it may call (from its thread) to show progress.
Report = Callable[[int, int], None]


def plain_error(error: BaseException) -> str:
    """The sentence shown for ``error``. A ``PneumoDeskError`` carries one already; anything else is a bug: it is
    logged with its traceback, and the person is told that something went wrong (its type named)."""
    if isinstance(error, PneumoDeskError) and str(error):
        return str(error)
    log.error("unexpected error in the desktop app", exc_info=error)
    return f"Something went wrong ({type(error).__name__}: {error})."


def _ignore(_value: object) -> None:
    pass


class CallWorker(QObject):
    """Runs ``call(report)`` once in its thread; emits ``progress`` as it reports, then ``done`` or ``failed``."""

    progress = Signal(int, int)
    done = Signal(object)
    failed = Signal(str)

    def __init__(self, call: Callable[[Report], Any]) -> None:
        super().__init__()
        self.call = call

    @Slot()
    def run(self) -> None:
        try:
            result = self.call(lambda done, total: self.progress.emit(int(done), int(total)))
        except BaseException as error:  # every fault reaches the page as words, never a silent dead thread
            self.failed.emit(plain_error(error))
            return
        self.done.emit(result)


class BackgroundCalls(QObject):
    """Starts one ``CallWorker`` at a time and tidies its thread when it ends."""

    busy_changed = Signal(bool)

    def __init__(self, name: str, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.name = name
        self._thread: QThread | None = None
        self._worker: CallWorker | None = None
        self._handlers: tuple[Callable[[Any], None], Callable[[str], None], Callable[[int, int], None] | None] = (
            _ignore, _ignore, None)

    @property
    def busy(self) -> bool:
        return self._thread is not None

    def start(self, call: Callable[[Report], Any], on_done: Callable[[Any], None],
              on_failed: Callable[[str], None], on_progress: Callable[[int, int], None] | None = None) -> bool:
        """Run ``call`` in the background; False (and nothing started) while another call is still running.

        The handlers run in the GUI thread (the worker's signals reach this object's slots by queued connection).
        """
        if self.busy:
            return False
        worker = CallWorker(call)
        worker.done.connect(self._on_done)
        worker.failed.connect(self._on_failed)
        worker.progress.connect(self._on_progress)
        self._handlers = (on_done, on_failed, on_progress)
        self._worker = worker
        self._thread = start_in_thread(worker, f"pneumodesk-{self.name}")
        self.busy_changed.emit(True)
        return True

    def _current(self) -> bool:
        """Whether the signal comes from the running call (not one that ``shutdown`` already let go of)."""
        return self._worker is not None and self.sender() is self._worker

    @Slot(object)
    def _on_done(self, result: object) -> None:
        if self._current():
            self._finish(self._handlers[0], result)

    @Slot(str)
    def _on_failed(self, message: str) -> None:
        if self._current():
            self._finish(self._handlers[1], message)

    @Slot(int, int)
    def _on_progress(self, done: int, total: int) -> None:
        if self._current() and self._handlers[2] is not None:
            self._handlers[2](done, total)

    def _finish(self, handler: Callable[[Any], None], value: Any) -> None:
        self._join()
        self.busy_changed.emit(False)
        handler(value)

    def _join(self) -> None:
        thread, self._thread, self._worker = self._thread, None, None
        if thread is not None:
            thread.quit()
            thread.wait()

    def shutdown(self) -> None:
        """Wait for a running call to end (calls are short: a scan, a request) and stop its thread; its outcome is
        dropped."""
        self._join()


__all__ = ["BackgroundCalls", "CallWorker", "Report", "plain_error"]
