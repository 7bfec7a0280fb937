"""The prediction workspace: worklist on the left, viewer on the right, and the controller between them.

The page owns two worker threads (batch prediction, viewer heat maps) and, while one is being written, the worklist
report's (thumbnails and PDF, with progress and cancel). It never waits on them, except in ``shutdown()``, which
cancels the batch and the report and joins every thread so that closing the window loses nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QItemSelectionModel, QModelIndex, Qt, QThread, QTimer, Signal
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from pneumodesk.inference.histogram import probability_histogram
from pneumodesk.node.permissions import Permission

from ..charts import HistogramChart
from ..export import Report, write_report_pdf, write_worklist_csv
from ..settings import Settings
from ..verdicts import AGREE, DISAGREE, VerdictStore
from ..widgets.viewer_panel import ViewerPanel
from ..widgets.worklist_model import Column, FilterMode, Status, WorklistFilter, WorklistItem, WorklistModel
from ..workers.background import BackgroundCalls
from ..workers.heatmap_loader import HeatmapLoader
from ..workers.prediction import BatchWorker
from ..workers.threads import start_in_thread
from ..worklist_report import report_lines, thumbnail, write_worklist_pdf
from .base import SessionPage

if TYPE_CHECKING:
    import numpy as np

    from pneumodesk.imaging import XRay
    from pneumodesk.inference import Prediction, Predictor
    from pneumodesk.node.clinical import ClinicalService
    from pneumodesk.node.readings import Reading, ReadingService

FILE_FILTER = "X-ray images (*.dcm *.dicom *.dic *.png *.jpg *.jpeg *.tif *.tiff);;All files (*)"
FILTER_LABELS = {FilterMode.ALL: "All images", FilterMode.POSITIVES: "Positives only", FilterMode.ERRORS: "Errors only"}


class PredictPage(SessionPage):
    """Predictions, verdicts and exports go through ``clinical`` (``ClinicalService``) with the signed-in session
    (permission check and audit); with no session (signed out, or before sign-in) the page refuses them. The worklist
    belongs to the workstation's reading session: a new session (or a lock) keeps it."""

    batch_started = Signal(int)  # number of images
    batch_finished = Signal(bool)  # cancelled?
    image_shown = Signal(int)  # source row whose image and heat map are now in the viewer
    model_ready = Signal()
    report_progress = Signal(int, int)  # worklist report: images done, of
    report_written = Signal(object)  # the worklist report's Path, once complete
    report_failed = Signal(str)  # why the worklist report was not written (also when cancelled)

    def __init__(self, settings: Settings, verdicts: VerdictStore, clinical: ClinicalService,
                 parent: QWidget | None = None, *, readings: ReadingService | None = None) -> None:
        super().__init__(parent)
        self.clinical = clinical
        self.readings = readings
        self.settings = settings
        self.verdicts = verdicts
        self.batch_predictor: Predictor | None = None
        self.viewer_predictor: Predictor | None = None
        self.model = WorklistModel()
        self.proxy = WorklistFilter(self.model)
        self._pending: list[int] = []
        self._batch_thread: QThread | None = None
        self._batch_worker: BatchWorker | None = None
        self._batch_rows: list[int] = []
        self._batch_problem = ""
        self._waiting_paths: list[Path] = []
        self._heatmaps: HeatmapLoader | None = None
        self._reports = BackgroundCalls("worklist-report", self)
        self._report_cancel = threading.Event()
        self.shown: tuple[int, XRay, np.ndarray] | None = None  # (source row, X-ray, heat map) in the viewer
        self._build()
        self.setAcceptDrops(True)

    # --- layout ---
    def _build(self) -> None:
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 4)
        bar = QHBoxLayout()
        self.open_files_button = QPushButton("Open files…")
        self.open_files_button.setAccessibleName("Open X-ray files")
        self.open_files_button.clicked.connect(self.open_files_dialog)
        self.open_folder_button = QPushButton("Open folder…")
        self.open_folder_button.setAccessibleName("Open a folder of X-rays")
        self.open_folder_button.clicked.connect(self.open_folder_dialog)
        self.filter = QComboBox()
        self.filter.setAccessibleName("Worklist filter")
        for mode, label in FILTER_LABELS.items():
            self.filter.addItem(label, mode.value)
        self.filter.currentIndexChanged.connect(lambda _: self.proxy.set_mode(FilterMode(self.filter.currentData())))
        self.summary = QLabel("No images yet")
        self.summary.setObjectName("muted")
        self.summary.setAccessibleName("Worklist summary")
        self.progress = QProgressBar()
        self.progress.setAccessibleName("Batch progress")
        self.progress.setMaximumWidth(260)
        self.progress.setFormat("%v of %m")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setAccessibleName("Cancel the running batch")
        self.cancel_button.clicked.connect(self.cancel_batch)
        for widget in (self.open_files_button, self.open_folder_button, QLabel("Show"), self.filter):
            bar.addWidget(widget)
        bar.addSpacing(12)
        bar.addWidget(self.summary, 1)
        bar.addWidget(self.progress)
        bar.addWidget(self.cancel_button)
        self.report_bar = QProgressBar()
        self.report_bar.setAccessibleName("Worklist report progress")
        self.report_bar.setMaximumWidth(220)
        self.report_bar.setFormat("Report: %v of %m")
        self.cancel_report_button = QPushButton("Cancel report")
        self.cancel_report_button.setAccessibleName("Cancel the worklist report")
        self.cancel_report_button.clicked.connect(self.cancel_worklist_report)
        bar.addWidget(self.report_bar)
        bar.addWidget(self.cancel_report_button)
        self._reports.busy_changed.connect(self._set_report_busy)
        self._set_report_busy(False)
        self._set_busy(False)
        layout.addLayout(bar)

        self.table = QTableView()
        self.table.setAccessibleName("Worklist")
        self.table.setModel(self.proxy)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setAlternatingRowColors(True)
        self.table.setShowGrid(False)
        self.table.setWordWrap(False)
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(26)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(Column.PROBABILITY, Qt.SortOrder.DescendingOrder)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(Column.FILE, QHeaderView.ResizeMode.Stretch)
        for column, width in ((Column.PROBABILITY, 90), (Column.DECISION, 110), (Column.STATUS, 75),
                              (Column.VERDICT, 70)):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.Interactive)
            header.resizeSection(column, width)
        self.table.selectionModel().currentRowChanged.connect(lambda current, _: self._show(current))

        self.viewer = ViewerPanel()
        self.viewer.verdict_requested.connect(self.set_verdict)
        self.viewer.overlay_toggled.connect(self.viewer.canvas.set_overlay)
        self.viewer.opacity_changed.connect(self._set_opacity)
        self.viewer.set_opacity(self.settings.heatmap_opacity)

        # The worklist's probabilities; clicking a bar shows only that bin's images (again: all of them).
        self.histogram = HistogramChart()
        self.histogram.bin_selected.connect(self.show_probability_bin)
        self._histogram_due = QTimer(self)  # many results arrive at once: draw the histogram once per burst
        self._histogram_due.setSingleShot(True)
        self._histogram_due.setInterval(150)
        self._histogram_due.timeout.connect(self.update_histogram)
        worklist = QSplitter(Qt.Orientation.Vertical)
        worklist.addWidget(self.table)
        worklist.addWidget(self.histogram)
        worklist.setStretchFactor(0, 3)
        worklist.setStretchFactor(1, 1)
        worklist.setSizes([560, 220])
        self.splitter = QSplitter()
        self.splitter.addWidget(worklist)
        self.splitter.addWidget(self.viewer)
        self.splitter.setStretchFactor(0, 2)
        self.splitter.setStretchFactor(1, 3)
        self.splitter.setSizes([600, 800])
        layout.addWidget(self.splitter, 1)

    # --- model ---
    def set_predictors(self, batch: Predictor, viewer: Predictor) -> None:
        """Called once the model has loaded (again after an admin accepted another model): starts the viewer thread
        (or hands it the new model) and any images already queued."""
        self.batch_predictor, self.viewer_predictor = batch, viewer
        if self._heatmaps is not None:
            self._heatmaps.set_predictor(viewer)
        else:
            self._heatmaps = HeatmapLoader(viewer)
            self._heatmaps.ready.connect(self._on_viewer_ready)
            self._heatmaps.failed.connect(self._on_viewer_failed)
        self.model_ready.emit()
        waiting, self._waiting_paths = self._waiting_paths, []
        if waiting:
            self.add_paths(waiting, _authorized=True)
        self._show(self.table.currentIndex())

    def set_model_error(self, message: str) -> None:
        self.viewer.canvas.show_message(f"The model could not be loaded, so nothing can be predicted.\n\n{message}")

    def set_operating_point(self, name: str) -> None:
        if self.batch_predictor is None or self.viewer_predictor is None:
            return
        self.batch_predictor = self.batch_predictor.with_operating_point(name)
        self.viewer_predictor = self.viewer_predictor.with_operating_point(name)
        if self._heatmaps is not None:
            self._heatmaps.set_predictor(self.viewer_predictor)
        self.model.redecide(self.batch_predictor.decide)
        self._update_summary()
        self._show_facts()

    # --- access (the session arrives through SessionPage.set_session) ---
    def session_changed(self) -> None:
        """Show the buttons the role may use (the service refuses the others anyway); signed out, nothing changes
        (the gate covers the page)."""
        if self.session is None:
            return
        for button in (self.viewer.agree, self.viewer.disagree):
            button.setVisible(self.session.can(Permission.REVIEW))
        for button in (self.open_files_button, self.open_folder_button):
            button.setVisible(self.session.can(Permission.PREDICT))

    def _authorize_prediction(self, count: int) -> bool:
        from pneumodesk.node import NodeError

        if self.session is None:
            self.summary.setText("Sign in to predict.")
            return False
        try:
            self.clinical.authorize_prediction(self.session, count)
        except NodeError as error:
            self.summary.setText(str(error))
            return False
        return True

    # --- adding images ---
    def add_paths(self, paths: list[Path], _authorized: bool = False) -> list[int]:
        """Queue files and folders (searched recursively); returns the new source rows.

        Before the model has loaded, the paths wait (unexpanded) and are added when it is ready, so the window
        never blocks on importing the inference stack. The predict permission is checked before anything is read.
        """
        if not _authorized and not self._authorize_prediction(len(paths)):
            return []
        if self.batch_predictor is None:
            self._waiting_paths.extend(paths)
            self.summary.setText(f"{len(self._waiting_paths)} item(s) waiting for the model to load…")
            return []
        from pneumodesk.inference import expand_paths

        rows = self.model.add_paths(expand_paths(paths))
        self._pending.extend(rows)
        self._update_summary()
        self._start_next_batch()
        return rows

    def open_files_dialog(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(self, "Open X-ray files", self.settings.last_folder, FILE_FILTER)
        if files:
            self.settings.last_folder = str(Path(files[0]).parent)
            self.add_paths([Path(f) for f in files])

    def open_folder_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a folder of X-rays", self.settings.last_folder)
        if folder:
            self.settings.last_folder = folder
            self.add_paths([Path(folder)])

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if event.mimeData().hasUrls() and any(url.isLocalFile() for url in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        paths = [Path(url.toLocalFile()) for url in event.mimeData().urls() if url.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            self.add_paths(paths)

    # --- batches ---
    @property
    def batch_running(self) -> bool:
        return self._batch_thread is not None

    def _start_next_batch(self) -> None:
        if self.batch_predictor is None or self.batch_running or not self._pending:
            return
        rows, self._pending = self._pending, []
        self._batch_rows = rows
        worker = BatchWorker(self.batch_predictor, [(row, self.model.entry(row).path) for row in rows])
        # Receivers are this page's own methods, so Qt queues each call onto the GUI thread.
        worker.running.connect(self._on_running)
        worker.result.connect(self._on_result)
        worker.progress.connect(self._on_progress)
        worker.failed.connect(self._on_batch_failed)
        worker.finished.connect(self._on_batch_finished)
        self.progress.setRange(0, len(rows))
        self.progress.setValue(0)
        self._set_busy(True)
        self._batch_worker = worker
        self._batch_thread = start_in_thread(worker, "pneumodesk-batch")
        self.batch_started.emit(len(rows))

    def cancel_batch(self) -> None:
        """Stop after the image in hand; images not reached are marked cancelled, finished ones are kept."""
        if self._batch_worker is not None:
            self._batch_worker.cancel()
        self.model.set_status(self._pending, Status.CANCELLED)
        self._pending = []

    def _on_running(self, rows: list[int]) -> None:
        self.model.set_status([r for r in rows if self.model.entry(r).status is Status.QUEUED], Status.RUNNING)

    def _on_progress(self, done: int, total: int) -> None:
        self.progress.setValue(done)

    def _on_result(self, row: int, prediction: Prediction | None, error: str | None, sha256: str | None,
                   outside_intended_use: bool = False) -> None:
        if prediction is not None and self.batch_predictor is not None:
            prediction = self.batch_predictor.decide(prediction.probability)  # the operating point may have changed
        verdict = self.verdicts.get(sha256) if sha256 else None
        self.model.set_result(row, prediction, error, sha256, verdict, outside_intended_use)
        self._update_summary()
        if row == self.current_row():
            self._show(self.table.currentIndex())

    def _on_batch_failed(self, message: str) -> None:
        self._batch_problem = message

    def _on_batch_finished(self, cancelled: bool) -> None:
        thread, self._batch_thread, self._batch_worker = self._batch_thread, None, None
        if thread is not None:
            thread.quit()
            thread.wait()
            thread.deleteLater()
        unfinished = [r for r in self._batch_rows if self.model.entry(r).status in (Status.QUEUED, Status.RUNNING)]
        self.model.set_status(unfinished, Status.CANCELLED)
        self._record_batch(self._batch_rows)
        self._batch_rows = []
        self._set_busy(False)
        self._update_summary()
        if self._batch_problem:
            self.summary.setText(f"{self.summary.text()} · {self._batch_problem}")
            self._batch_problem = ""
        self._waiting_paths = []
        if self.current_row() < 0 and self.proxy.rowCount():
            self.select_proxy_row(0)
        self.batch_finished.emit(cancelled)
        self._start_next_batch()

    def _record_batch(self, rows: list[int]) -> None:
        """Audit how many images the batch predicted (and failed on) and with which model: never which images."""
        if self.session is None or self.batch_predictor is None or not rows:
            return
        statuses = [self.model.entry(r).status for r in rows]
        self.clinical.record_predictions(self.session, statuses.count(Status.DONE), statuses.count(Status.ERROR),
                                         self.batch_predictor.model_version)

    def _set_busy(self, busy: bool) -> None:
        self.progress.setVisible(busy)
        self.cancel_button.setVisible(busy)

    def update_histogram(self) -> None:
        """Draw the histogram of the predicted probabilities, with the operating point's threshold."""
        threshold = self.batch_predictor.operating_point.threshold if self.batch_predictor is not None else None
        probabilities = [item.prediction.probability for item in self.model.entries() if item.prediction]
        self.histogram.set_histogram(probability_histogram(probabilities, threshold))

    def show_probability_bin(self, index: int) -> None:
        """Show only the worklist rows in probability bin ``index`` (-1: all rows, as the filter says)."""
        self.proxy.set_probability_bin(index)
        if index < 0:
            self.histogram.title_label.setText("<b>Probabilities in the worklist</b> · click a bar to show only "
                                               "its images")
        else:
            low, high = self.histogram.histogram.bin_range(index)
            self.histogram.title_label.setText(f"<b>Probabilities in the worklist</b> · showing {low:.0%}–"
                                               f"{high:.0%} only; click the bar again to show all")

    def _update_summary(self) -> None:
        self._histogram_due.start()
        items = self.model.entries()
        if not items:
            self.summary.setText("No images yet")
            return
        done = sum(item.status is Status.DONE for item in items)
        positives = sum(bool(item.prediction and item.prediction.is_pneumonia) for item in items)
        errors = sum(item.status is Status.ERROR for item in items)
        self.summary.setText(f"{len(items)} images · {done} predicted · {positives} positive · {errors} errors")

    # --- navigation and viewer ---
    def current_row(self) -> int:
        """The source row of the selected image, or -1."""
        index = self.table.currentIndex()
        return self.proxy.mapToSource(index).row() if index.isValid() else -1

    def select_proxy_row(self, proxy_row: int) -> None:
        index = self.proxy.index(proxy_row, 0)
        self.table.selectionModel().setCurrentIndex(
            index, QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows
        )
        self.table.scrollTo(index)

    def step(self, delta: int) -> None:
        """Select the next (+1) or previous (−1) visible image."""
        count = self.proxy.rowCount()
        if not count:
            return
        current = self.table.currentIndex()
        row = current.row() + delta if current.isValid() else 0
        self.select_proxy_row(min(max(row, 0), count - 1))

    def _show_facts(self) -> None:
        index = self.table.currentIndex()
        row = self.current_row()
        item = self.model.entry(row) if row >= 0 else None
        self.viewer.show_item(item, index.row() + 1, self.proxy.rowCount())
        self.viewer.reading.setText(self._reading_text(item))

    def _reading_text(self, item: WorklistItem | None) -> str:
        if item is None or item.prediction is None or not item.sha256 or self.readings is None:
            return ""
        reading = self.readings.get(item.sha256)
        if reading is not None:
            return f"Your reading: {reading.value} (N / P / U to change)"
        if item.verdict == DISAGREE:
            return "What did you read? N normal · P pneumonia · U unsure"
        if item.verdict == AGREE:
            return "You may record what you read: N normal · P pneumonia · U unsure"
        return ""

    def _show(self, index: QModelIndex) -> None:
        row = self.proxy.mapToSource(index).row() if index.isValid() else -1
        self._show_facts()
        if row < 0:
            return
        item = self.model.entry(row)
        canvas = self.viewer.canvas
        if self.shown is not None and self.shown[0] == row:
            return  # already on screen (e.g. only its facts changed)
        if item.status is not Status.DONE and self._heatmaps is not None:
            self._heatmaps.forget()
        if item.outside_intended_use:
            canvas.show_message(f"{item.error}\n\nIts report (PDF) says so instead of giving a probability.")
        elif item.status is Status.ERROR:
            canvas.show_message(f"This file cannot be shown.\n\n{item.error}")
        elif item.status is not Status.DONE:
            canvas.show_message(f"Waiting for the prediction ({item.status.value}).")
        elif self._heatmaps is not None and self._heatmaps.pending_row != row:
            canvas.show_message("Loading image and heat map…")
            self._heatmaps.request(row, item.path)
        if self.shown is not None and self.shown[0] != row:
            self.shown = None

    def _on_viewer_ready(self, row: int, xray: XRay, heatmap: np.ndarray) -> None:
        self.shown = (row, xray, heatmap)
        self.viewer.canvas.set_image(xray.pixels, heatmap)
        self.image_shown.emit(row)

    def _on_viewer_failed(self, row: int, message: str) -> None:
        self.viewer.canvas.show_message(f"This file cannot be shown.\n\n{message}")

    def toggle_overlay(self) -> None:
        self.viewer.overlay.toggle()

    def _set_opacity(self, opacity: float) -> None:
        self.viewer.canvas.set_overlay_opacity(opacity)
        self.settings.heatmap_opacity = opacity

    # --- verdicts ---
    def set_verdict(self, verdict: str | None) -> None:
        """Record the reader's verdict on the selected image (and every row holding the same file content)."""
        row = self.current_row()
        item = self.model.entry(row) if row >= 0 else None
        if item is None or item.prediction is None or not item.sha256:
            self._show_facts()
            return
        from pneumodesk.node import NodeError

        if self.session is None:
            self.summary.setText("Sign in to record verdicts.")
            return
        sha256 = item.sha256
        try:
            self.clinical.record_verdict(self.session, verdict, item.prediction.model_version,
                                         lambda: self.verdicts.set(sha256, verdict))
        except NodeError as error:
            self.summary.setText(str(error))
            return
        for other_row, other in enumerate(self.model.entries()):
            if other.sha256 == item.sha256:
                self.model.set_verdict(other_row, verdict)
        self._show_facts()

    def set_reading(self, reading: Reading) -> None:
        """Record what the reader read on the selected image (after agreeing or disagreeing): kept by the image's
        content digest with the path it was read from; unsure is kept but never becomes a label."""
        row = self.current_row()
        item = self.model.entry(row) if row >= 0 else None
        if item is None or item.prediction is None or not item.sha256 or self.readings is None:
            return
        from pneumodesk.node import NodeError

        if self.session is None:
            self.summary.setText("Sign in to record readings.")
            return
        if item.verdict is None:
            self.summary.setText("Agree or disagree first (A / D), then record what you read (N / P / U).")
            return
        try:
            self.readings.record(self.session, item.sha256, item.path, reading)
        except NodeError as error:
            self.summary.setText(str(error))
            return
        self._show_facts()

    # --- export ---
    def visible_items(self) -> list[WorklistItem]:
        """The rows as shown: current sort order and filter."""
        return [self.model.entry(self.proxy.source_row(r)) for r in range(self.proxy.rowCount())]

    def _export(self, kind: str, count: int, write: Callable[[], Path]) -> Path:
        """Every export passes the service: export_reports is checked and the export audited (not its file name).

        Raises ``PermissionDenied`` (a ``NodeError``) when not allowed or signed out.
        """
        from pneumodesk.node import PermissionDenied

        if self.session is None:
            raise PermissionDenied("export reports while signed out")
        return self.clinical.export(self.session, kind, count, write)

    def export_csv(self, path: Path) -> Path:
        items = self.visible_items()
        return self._export("worklist_csv", len(items), lambda: write_worklist_csv(items, path))

    @property
    def report_running(self) -> bool:
        return self._reports.busy

    @property
    def report_cancelled(self) -> bool:
        """Whether the last worklist report was cancelled (its ``report_failed`` is no fault)."""
        return self._report_cancel.is_set()

    def start_worklist_report(self, path: Path,
                              read_thumbnail: Callable[[Path], np.ndarray | None] = thumbnail) -> bool:
        """Write the worklist report in the background: every image as shown now (sort order and filter), one line
        each with a thumbnail. Progress comes as ``report_progress``, the outcome as ``report_written`` or
        ``report_failed`` (cancelled included); the window stays usable meanwhile. False when a report is already
        being written. Raises ``ValueError`` (plain message) when the worklist is empty and ``PermissionDenied``
        when the reader may not export, before anything starts."""
        from pneumodesk.node import PermissionDenied

        if self.report_running:
            return False
        items = [replace(item) for item in self.visible_items()]  # a snapshot: later verdicts do not race the thread
        if not items:
            raise ValueError("The worklist is empty: open X-rays first, then export the worklist report.")
        session = self.session
        if session is None:
            raise PermissionDenied("export reports while signed out")
        self.clinical.accounts.require(session, Permission.EXPORT_REPORTS, "worklist_pdf")
        model = (f"{self.batch_predictor.card.name} {self.batch_predictor.model_version}" if self.batch_predictor
                 else "none loaded")
        threshold = self.batch_predictor.operating_point.threshold if self.batch_predictor else None
        cancel = self._report_cancel = threading.Event()

        def write(report: Callable[[int, int], None]) -> Path:  # runs in the report's thread
            def lines_and_pdf() -> Path:
                lines = report_lines(items, read_thumbnail, progress=report, cancel=cancel)
                return write_worklist_pdf(lines, path, model, threshold, cancel=cancel)

            return self.clinical.export(session, "worklist_pdf", len(items), lines_and_pdf)

        self.report_bar.setRange(0, len(items))
        self.report_bar.setValue(0)
        return self._reports.start(write, self.report_written.emit, self.report_failed.emit, self._on_report_progress)

    def cancel_worklist_report(self) -> None:
        """Stop the report at the next image; nothing is written (``report_failed`` says it was cancelled)."""
        self._report_cancel.set()

    def _on_report_progress(self, done: int, total: int) -> None:
        self.report_bar.setRange(0, total)
        self.report_bar.setValue(done)
        self.report_progress.emit(done, total)

    def _set_report_busy(self, busy: bool) -> None:
        self.report_bar.setVisible(busy)
        self.cancel_report_button.setVisible(busy)

    def export_pdf(self, path: Path) -> Path:
        """Report on the image in the viewer. Raises ``ValueError`` (plain message) when none is ready."""
        return self._export("report_pdf", 1, lambda: self._write_pdf(path))

    def _write_pdf(self, path: Path) -> Path:
        row = self.current_row()
        card_name = self.batch_predictor.card.name if self.batch_predictor else "PneumoDesk model"
        if row >= 0 and self.model.entry(row).outside_intended_use:
            return self._write_refusal_pdf(row, card_name, path)
        if row < 0 or self.shown is None or self.shown[0] != row:
            raise ValueError("Select a predicted image and wait until it is shown, then export its report.")
        item = self.model.entry(row)
        if item.prediction is None:
            raise ValueError("This image has no prediction, so there is nothing to report.")
        _, xray, heatmap = self.shown
        report = Report(
            position=self.table.currentIndex().row() + 1,
            total=self.proxy.rowCount(),
            pixels=xray.pixels,
            heatmap=heatmap,
            prediction=item.prediction,
            model_name=card_name,
            verdict=item.verdict,
            verdict_time=self.verdicts.time(item.sha256) if item.sha256 and item.verdict else None,
            heatmap_opacity=self.settings.heatmap_opacity,
        )
        return write_report_pdf(report, path)

    def _write_refusal_pdf(self, row: int, card_name: str, path: Path) -> Path:
        """The report of an image the model refused: the image and the refusal, no probability, no heat map."""
        from pneumodesk.imaging import XRayReadError, read_xray

        item = self.model.entry(row)
        try:
            xray = read_xray(item.path)
        except XRayReadError as error:
            raise ValueError(f"The image can no longer be read ({error}).") from None
        report = Report(
            position=self.table.currentIndex().row() + 1,
            total=self.proxy.rowCount(),
            pixels=xray.pixels,
            heatmap=None,
            prediction=None,
            model_name=card_name,
            verdict=None,
            verdict_time=None,
            refusal=item.error,
            model_version=self.batch_predictor.model_version if self.batch_predictor else None,
        )
        return write_report_pdf(report, path)

    # --- shutdown ---
    def shutdown(self) -> None:
        """Cancel the batch and the worklist report and join every worker thread (each stops after the image in
        hand; a cancelled report leaves no file)."""
        self.cancel_worklist_report()
        self._reports.shutdown()
        self.cancel_batch()
        if self._batch_thread is not None:
            self._batch_thread.quit()
            self._batch_thread.wait()
        if self._heatmaps is not None:
            self._heatmaps.stop()
