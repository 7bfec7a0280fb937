"""``ModelLoader``: loads the prediction model in a worker thread and announces it ready (or why it failed).

Invariants: at most one load runs at a time; a newer ``load`` replaces an older one, whose outcome is dropped; and
``ready``/``failed`` arrive in the GUI thread. ``stop()`` joins the worker thread (closing the window waits for it).
"""

from __future__ import annotations

import gc
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QThread, Signal, Slot

from .workers.model_load import ModelLoadWorker
from .workers.threads import start_in_thread

if TYPE_CHECKING:
    from collections.abc import Callable

    from pneumodesk.inference import Predictor


class ModelLoader(QObject):
    """Owns the model-loading worker and its thread; the window listens to ``ready`` and ``failed``."""

    ready = Signal(object, object)  # (batch predictor, viewer predictor): separate networks, same weights
    failed = Signal(str)  # a plain sentence

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._worker: ModelLoadWorker | None = None
        self._thread: QThread | None = None

    @property
    def loading(self) -> bool:
        return self._thread is not None

    def load(self, bundle: Path | None, operating_point: str | None,
             locate: Callable[[], Path] | None = None) -> None:
        """Load ``bundle`` (or else ``locate()``'s, or else the bundled default) in the background."""
        self.stop()
        worker = ModelLoadWorker(bundle, operating_point, locate)
        worker.loaded.connect(self._on_loaded)
        worker.failed.connect(self._on_failed)
        self._worker = worker
        self._thread = start_in_thread(worker, "pneumodesk-model-loader")

    def stop(self) -> None:
        """Join the running load, if any; its outcome is dropped."""
        thread, self._thread, self._worker = self._thread, None, None
        if thread is not None:
            thread.quit()
            thread.wait()

    def _current(self) -> bool:
        """Whether the signal comes from the running worker (not one that a newer load replaced)."""
        return self._worker is not None and self.sender() is self._worker

    @Slot(object, object)
    def _on_loaded(self, batch: Predictor, viewer: Predictor) -> None:
        if not self._current():
            return
        self.stop()
        # torch and Qt are loaded now: keep the ~450 000 objects they bring out of the cyclic collector, whose full
        # passes over them would otherwise freeze the window for ~200 ms at unpredictable moments.
        gc.freeze()
        self.ready.emit(batch, viewer)

    @Slot(str)
    def _on_failed(self, message: str) -> None:
        if not self._current():
            return
        self.stop()
        self.failed.emit(message)


__all__ = ["ModelLoader"]
