"""Everything slow runs here, off the GUI thread: worker objects moved to QThreads, results sent back by signal.

Each worker has its own ``Predictor`` (same weights, separate network), so the batch and the viewer never share a
model across threads: Grad-CAM hooks on one network cannot see another thread's forward passes.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Qt, QThread, Signal, Slot

from .verdicts import file_sha256

if TYPE_CHECKING:
    from collections.abc import Callable

    from pneumodesk.inference import Predictor


class ModelLoader(QObject):
    """Imports the inference stack and loads a bundle (seconds), so the window can show before the model is ready."""

    loaded = Signal(object, object)  # (batch predictor, viewer predictor)
    failed = Signal(str)

    def __init__(self, bundle: Path | None, operating_point: str | None,
                 locate: Callable[[], Path] | None = None) -> None:
        """``bundle`` wins; else ``locate()`` (the node's active model, found in this thread: its first call may
        register and copy the bundled default); else, or if that fails, the bundled default model."""
        super().__init__()
        self.bundle = bundle
        self.operating_point = operating_point
        self.locate = locate

    def _path(self) -> Path:
        from pneumodesk.model import default_bundle_path

        if self.bundle is not None:
            return self.bundle
        if self.locate is not None:
            try:
                return self.locate()
            except Exception:  # a damaged registry must not stop predictions with the bundled model
                return default_bundle_path()
        return default_bundle_path()

    @Slot()
    def run(self) -> None:
        from pneumodesk.inference import Predictor
        from pneumodesk.model import ModelError, load_bundle

        try:
            bundle = load_bundle(self._path())
            try:
                batch = Predictor(bundle, self.operating_point)
            except ModelError:  # a saved operating point this model does not have: use the model's default
                batch = Predictor(bundle, None)
            viewer = Predictor(bundle, batch.operating_point_name)
        except ModelError as error:
            self.failed.emit(str(error))
            return
        except Exception as error:  # anything else must still reach the window as words
            self.failed.emit(f"The model could not be loaded ({type(error).__name__}: {error}).")
            return
        self.loaded.emit(batch, viewer)


class BatchWorker(QObject):
    """Predicts a list of (row, path) jobs in order; one ``result`` per job unless cancelled.

    ``cancel()`` may be called from any thread; the worker stops after the result in hand, and ``finished(True)``
    tells which rows were never reached (those not reported by ``result``).
    """

    running = Signal(list)  # rows now being decoded or predicted
    result = Signal(int, object, object, object)  # row, Prediction | None, error | None, sha256 | None
    progress = Signal(int, int)  # done, total
    failed = Signal(str)  # an unexpected fault stopped the batch; rows not reported keep no result
    finished = Signal(bool)  # stopped early (cancelled or failed)?

    def __init__(self, predictor: Predictor, jobs: list[tuple[int, Path]], batch_size: int = 16) -> None:
        super().__init__()
        self.predictor = predictor
        self.jobs = jobs
        self.batch_size = batch_size
        self._cancel = threading.Event()

    def cancel(self) -> None:
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    @Slot()
    def run(self) -> None:
        from pneumodesk.inference import predict_files

        rows = [row for row, _ in self.jobs]
        size = self.batch_size
        results = predict_files(self.predictor, [path for _, path in self.jobs], batch_size=size)
        stopped = False
        try:
            if rows:
                self.running.emit(rows[: 2 * size])  # predict_files decodes one chunk ahead
            for done, row in enumerate(rows, start=1):
                if self._cancel.is_set():
                    stopped = True
                    break
                result = next(results)
                sha256 = None
                if result.prediction is not None:
                    try:
                        sha256 = file_sha256(result.path)
                    except OSError:
                        sha256 = None  # the file went away after it was read; no verdict can be kept for it
                self.result.emit(row, result.prediction, result.error, sha256)
                self.progress.emit(done, len(rows))
                if done % size == 0:
                    self.running.emit(rows[done + size : done + 2 * size])
        except Exception as error:  # a fault must end the batch visibly, never hang it
            stopped = True
            self.failed.emit(f"Prediction stopped unexpectedly ({type(error).__name__}: {error}).")
        finally:
            results.close()  # waits for at most one chunk of decoding already started
        self.finished.emit(stopped)


class HeatmapWorker(QObject):
    """Reads one image and computes its prediction and Grad-CAM heat map for the viewer.

    Requests are numbered; a request that is no longer the latest when its turn comes is skipped, so paging quickly
    through a worklist never builds a backlog.
    """

    ready = Signal(int, object, object, object)  # request id, XRay, Prediction, heat map (H×W float32 in [0, 1])
    failed = Signal(int, str)

    def __init__(self, predictor: Predictor) -> None:
        super().__init__()
        self.predictor = predictor
        self.latest = 0  # written by the GUI thread before each request is queued

    @Slot(int, object)
    def load(self, request: int, path: Path) -> None:
        from pneumodesk.imaging import XRayReadError, read_xray

        if request != self.latest:
            return
        try:
            xray = read_xray(path)
            prediction, heatmap = self.predictor.predict_with_heatmap(xray)
        except XRayReadError as error:
            self.failed.emit(request, str(error))
            return
        except Exception as error:  # shown to the reader instead of a stuck "Loading…"
            self.failed.emit(request, f"The heat map could not be computed ({type(error).__name__}: {error}).")
            return
        self.ready.emit(request, xray, prediction, heatmap)


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
