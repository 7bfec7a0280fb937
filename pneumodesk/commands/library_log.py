"""Where library chatter goes while a command runs: a log file in the app home, never the user's terminal.

pydicom, Pillow and the decoders warn (``warnings.warn``) and log (``logging``) about every odd file they meet; on a
folder of hospital exports that buries the command's own output. ``route_library_output_to_log`` sends both to
``<home>/logs/pneumodesk.log``; the command's own results and errors still go to stdout/stderr.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

LOG_NAME = "pneumodesk.log"
_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_installed: list[logging.Handler] = []  # the handler this module added, replaced (and closed) on the next call


def route_library_output_to_log(home: str | os.PathLike[str] | None) -> Path | None:
    """Send Python warnings and every logger's records to the app home's log file; return its path.

    Whatever happens, nothing of it reaches the terminal: if the log file cannot be opened (a read-only home), the
    records are dropped and ``None`` is returned, rather than falling back to Python's stderr "last resort".
    """
    from pneumodesk.node.store import resolve_home

    root = logging.getLogger()
    handler: logging.Handler
    try:
        folder = resolve_home(home) / "logs"
        folder.mkdir(parents=True, exist_ok=True)
        path: Path | None = folder / LOG_NAME
        handler = logging.FileHandler(folder / LOG_NAME, encoding="utf-8")
    except OSError:
        path, handler = None, logging.NullHandler()
    handler.setFormatter(logging.Formatter(_FORMAT))
    while _installed:
        previous = _installed.pop()
        root.removeHandler(previous)
        previous.close()
    root.addHandler(handler)
    _installed.append(handler)
    if root.level == logging.NOTSET or root.level > logging.INFO:
        root.setLevel(logging.INFO)
    logging.captureWarnings(True)
    return path
