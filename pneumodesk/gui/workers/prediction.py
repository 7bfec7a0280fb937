"""The prediction workers (batch and viewer heat map), each moved to its own QThread; results come back by signal.

Each worker has its own ``Predictor`` (same weights, separate network), so the batch and the viewer never share a
model across threads: Grad-CAM hooks on one network cannot see another thread's forward passes.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Signal, Slot

from pneumodesk.errors import PneumoDeskError

from ..verdicts import file_sha256

if TYPE_CHECKING:
    from pneumodesk.inference import Predictor

log = logging.getLogger(__name__)


class BatchWorker(QObject):
    """Predicts a list of (row, path) jobs in order; one ``result`` per job unless cancelled.

    ``cancel()`` may be called from any thread; the worker stops after the result in hand, and ``finished(True)``
    tells which rows were never reached (those not reported by ``result``).
    """

    running = Signal(list)  # rows now being decoded or predicted
    result = Signal(int, object, object, object, bool)  # row, Prediction | None, error | None, sha256 | None,
    # outside the intended use (the error is then the refusal)
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
                self.result.emit(row, result.prediction, result.error, sha256, result.outside_intended_use)
                self.progress.emit(done, len(rows))
                if done % size == 0:
                    self.running.emit(rows[done + size : done + 2 * size])
        except Exception as error:  # a bug (bad files yield their error instead): logged, and ends the batch visibly
            log.exception("the prediction batch stopped")
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
        from pneumodesk.imaging import read_xray

        if request != self.latest:
            return
        try:
            xray = read_xray(path)
            prediction, heatmap = self.predictor.predict_with_heatmap(xray)
        except PneumoDeskError as error:  # e.g. the file cannot be read as an X-ray
            self.failed.emit(request, str(error))
            return
        except Exception as error:  # a bug: logged, and shown to the reader instead of a stuck "Loading…"
            log.exception("the heat map could not be computed")
            self.failed.emit(request, f"The heat map could not be computed ({type(error).__name__}: {error}).")
            return
        self.ready.emit(request, xray, prediction, heatmap)


__all__ = ["BatchWorker", "HeatmapWorker"]
