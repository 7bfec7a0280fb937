"""``HeatmapLoader``: the viewer's side of the heat-map worker thread (one image at a time, latest request wins)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QThread, Signal

from .prediction import HeatmapWorker
from .threads import start_in_thread

if TYPE_CHECKING:
    import numpy as np

    from pneumodesk.imaging import XRay
    from pneumodesk.inference import Prediction, Predictor


class HeatmapLoader(QObject):
    """Loads a worklist row's X-ray and heat map off the GUI thread.

    Invariants: at most one row is pending; asking for another row supersedes it (the worker skips stale requests),
    and ``ready``/``failed`` are emitted only for the row asked for last.
    """

    ready = Signal(int, object, object)  # row, XRay, heat map (H×W float32 in [0, 1])
    failed = Signal(int, str)  # row, plain-language reason
    _load = Signal(int, object)  # request id, path: queued across to the worker thread

    def __init__(self, predictor: Predictor) -> None:
        super().__init__()
        self._worker = HeatmapWorker(predictor)
        self._worker.ready.connect(self._on_ready)
        self._worker.failed.connect(self._on_failed)
        self._load.connect(self._worker.load)
        self._thread: QThread | None = start_in_thread(self._worker, "pneumodesk-viewer", start_slot=None)
        self._request = 0
        self.pending_row = -1

    def set_predictor(self, predictor: Predictor) -> None:
        self._worker.predictor = predictor

    def request(self, row: int, path: Path) -> None:
        """Load ``row`` (unless it is already pending)."""
        if row == self.pending_row:
            return
        self._request += 1
        self.pending_row = row
        self._worker.latest = self._request
        self._load.emit(self._request, path)

    def forget(self) -> None:
        """Drop the pending request: its result, if it comes, is ignored."""
        self._request += 1
        self._worker.latest = self._request
        self.pending_row = -1

    def _on_ready(self, request: int, xray: XRay, prediction: Prediction, heatmap: np.ndarray) -> None:
        if request == self._request:
            row, self.pending_row = self.pending_row, -1
            self.ready.emit(row, xray, heatmap)

    def _on_failed(self, request: int, message: str) -> None:
        if request == self._request:
            row, self.pending_row = self.pending_row, -1
            self.failed.emit(row, message)

    def stop(self) -> None:
        """Skip anything queued and join the thread (waits for at most the image in hand)."""
        if self._thread is not None:
            self._worker.latest = -1
            self._thread.quit()
            self._thread.wait()
            self._thread = None
