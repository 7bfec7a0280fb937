"""Starting a worker object in its own low-priority QThread (the GUI thread must win the CPU)."""

from __future__ import annotations

import os
import threading

from PySide6.QtCore import QObject, Qt, QThread

BACKGROUND_NICENESS = 5  # how much nicer than the GUI thread the workers (and the threads they start) are


def _lower_this_threads_priority() -> None:
    """Let the GUI thread win the CPU on a busy 2-core workstation.

    On Linux the nice value is per thread and inherited by threads started from it (the decoding pool, torch's
    intra-op threads), which QThread's own priority levels do not reach; elsewhere Qt's ``LowPriority`` is used.
    """
    if hasattr(os, "setpriority") and hasattr(threading, "get_native_id"):
        try:
            tid = threading.get_native_id()
            os.setpriority(os.PRIO_PROCESS, tid, min(os.getpriority(os.PRIO_PROCESS, tid) + BACKGROUND_NICENESS, 19))
        except OSError:
            pass


def start_in_thread(worker: QObject, name: str, start_slot: str | None = "run") -> QThread:
    """Move ``worker`` to a new, started, low-priority QThread; ``start_slot`` (if any) runs there once it starts."""
    thread = QThread()
    thread.setObjectName(name)
    worker.moveToThread(thread)
    # Direct connection: runs in the new thread as it starts, before any queued slot of the worker.
    thread.started.connect(_lower_this_threads_priority, Qt.ConnectionType.DirectConnection)
    if start_slot:
        thread.started.connect(getattr(worker, start_slot))
    thread.start(QThread.Priority.LowPriority)
    return thread


__all__ = ["BACKGROUND_NICENESS", "start_in_thread"]
