"""The Datasets page (manage_datasets): register a labelled folder or CSV as a local dataset, see its class counts,
its fixed training/validation split and the files that could not be read (with the reason), and remove it.

Registration scans every file, so it runs in the background; the service does the scanning, the checks and the
permission check. Nothing is copied and nothing about a dataset leaves the workstation from here.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QTableWidgetItem,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from pneumodesk.node import NodeError, NodeService, Permission

from ..dialogs.confirm import ask_yes_no
from ..widgets.fields import message_label, show_message, text_field
from ..widgets.tables import read_only_table
from ..workers.background import BackgroundCalls, plain_error
from .base import SessionPage

if TYPE_CHECKING:
    from pneumodesk.node.datasets import DatasetInfo

KIND_WORDS = {"folder": "folder", "csv": "csv", "readings": "confirmed cases"}
COLUMNS = ("Name", "Kind", "Normal", "Pneumonia", "Training", "Validation", "Unreadable", "Registered", "By")

EXPLANATION = (
    "Register a folder with <b>NORMAL</b> and <b>PNEUMONIA</b> subfolders, or a CSV file of <i>path,label</i> rows. "
    "The files stay where they are: nothing is copied. A validation split is fixed when you register; an approved "
    "training plan may report only how many examples it used."
)


class DatasetsPage(SessionPage):
    changed = Signal()  # a dataset was registered or removed (plan review offers the current list)
    registration_finished = Signal(bool)  # whether it succeeded

    def __init__(self, node: NodeService, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.node = node
        self.datasets: list[DatasetInfo] = []
        self.ask: Callable[[str, str], bool] = lambda title, text: ask_yes_no(self, title, text)
        self.calls = BackgroundCalls("dataset-scan", self)
        self.calls.busy_changed.connect(self._on_busy)

        outer = QVBoxLayout(self)
        outer.setContentsMargins(24, 20, 24, 12)
        outer.addWidget(QLabel("<h2>Datasets</h2>"))
        intro = QLabel(EXPLANATION)
        intro.setWordWrap(True)
        outer.addWidget(intro)

        box = QGroupBox("Register a dataset")
        form = QFormLayout(box)
        self.name_field = text_field("Dataset name")
        self.name_field.setPlaceholderText("e.g. Radiology 2024, adults")
        self.path_field = QLineEdit()
        self.path_field.setAccessibleName("Dataset folder or CSV file")
        self.path_field.setPlaceholderText("folder with NORMAL/ and PNEUMONIA/, or a CSV of path,label")
        self.folder_button = QPushButton("Folder…")
        self.folder_button.clicked.connect(self.choose_folder)
        self.csv_button = QPushButton("CSV file…")
        self.csv_button.clicked.connect(self.choose_csv)
        path_row = QHBoxLayout()
        path_row.addWidget(self.path_field, 1)
        path_row.addWidget(self.folder_button)
        path_row.addWidget(self.csv_button)
        self.register_button = QPushButton("Register")
        self.register_button.setAccessibleName("Register the dataset")
        self.register_button.clicked.connect(self.register)
        self.progress = QProgressBar()
        self.progress.setAccessibleName("Scanning progress")
        self.progress.hide()
        action_row = QHBoxLayout()
        action_row.addWidget(self.register_button)
        action_row.addWidget(self.progress, 1)
        form.addRow("Name", self.name_field)
        form.addRow("Folder or CSV", path_row)
        form.addRow("", action_row)
        outer.addWidget(box)
        outer.addWidget(self._build_confirmed())

        self.table = read_only_table("Registered datasets", COLUMNS, stretch="first")
        outer.addWidget(self.table, 2)

        row = QHBoxLayout()
        self.remove_button = QPushButton("Remove…")
        self.remove_button.setAccessibleName("Remove the selected dataset")
        self.remove_button.clicked.connect(self.remove_selected)
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.clicked.connect(self.refresh)
        row.addWidget(self.remove_button)
        row.addWidget(self.refresh_button)
        row.addStretch(1)
        outer.addLayout(row)

        outer.addWidget(QLabel("<b>Files that could not be read</b> (open a dataset to see each file and why)"))
        self.unreadable = QTreeWidget()
        self.unreadable.setAccessibleName("Unreadable files")
        self.unreadable.setColumnCount(2)
        self.unreadable.setHeaderLabels(("File", "Why it could not be read"))
        self.unreadable.header().setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        outer.addWidget(self.unreadable, 1)

        self.message = message_label("Datasets message")
        outer.addWidget(self.message)

    def _build_confirmed(self) -> QGroupBox:
        box = QGroupBox("Confirmed cases")
        row = QHBoxLayout(box)
        self.confirmed_counts = QLabel("")
        self.confirmed_counts.setAccessibleName("Confirmed readings so far")
        self.confirmed_counts.setWordWrap(True)
        self.confirmed_button = QPushButton("Register confirmed cases")
        self.confirmed_button.setAccessibleName("Register the clinicians' confirmed readings as a dataset")
        self.confirmed_button.clicked.connect(self.register_confirmed)
        row.addWidget(self.confirmed_counts, 1)
        row.addWidget(self.confirmed_button)
        return box

    def _show_confirmed_counts(self) -> None:
        from pneumodesk.node.readings import Reading

        counts = self.node.readings.counts()
        self.confirmed_counts.setText(
            f"Clinicians' readings: {counts[Reading.NORMAL]} normal, {counts[Reading.PNEUMONIA]} pneumonia "
            f"(and {counts[Reading.UNSURE]} unsure, never used as labels). Registering them makes a dataset of "
            "the confirmed images where they lie; a file changed or moved since it was read is left out.")

    def register_confirmed(self) -> bool:
        """Register the confirmed readings as a dataset named "Confirmed cases <date time>" (in the background)."""
        if self.session is None:
            return False
        import datetime as dt

        name = f"Confirmed cases {dt.datetime.now().astimezone():%Y-%m-%d %H:%M:%S}"
        session, confirmed = self.session, self.node.confirmed_cases
        started = self.calls.start(lambda report: confirmed.register(session, name, progress=report),
                                   self._on_registered, self._on_register_failed, self._on_progress)
        if started:
            self.say("Checking the confirmed images …")
        return started

    # --- session (reading on show: SessionPage) ---
    def may_refresh(self) -> bool:
        return self.session is not None and self.session.can(Permission.MANAGE_DATASETS)

    def session_changed(self) -> None:
        """A user who may not manage datasets sees none."""
        if not self.may_refresh():
            self.datasets = []
            self._fill()

    def say(self, text: str, error: bool = False) -> None:
        show_message(self.message, text, error)

    def refresh(self) -> None:
        if self.session is None:
            return
        self._stale = False
        try:
            self.datasets = list(self.node.datasets.list(self.session))
            self._show_confirmed_counts()
        except NodeError as error:
            self.say(str(error), error=True)
            return
        self._fill()

    def _fill(self) -> None:
        self.table.setRowCount(len(self.datasets))
        self.unreadable.clear()
        for r, info in enumerate(self.datasets):
            registered = info.registered.astimezone().strftime("%Y-%m-%d %H:%M")
            values = (info.name, KIND_WORDS.get(info.kind, info.kind), info.normal, info.pneumonia,
                      info.training_count, info.validation_count,
                      len(info.unreadable), registered, info.registered_by)
            for c, value in enumerate(values):
                item = QTableWidgetItem(str(value))
                if isinstance(value, int):
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                if c == 0:
                    item.setToolTip(str(info.source))
                self.table.setItem(r, c, item)
            if info.unreadable:
                top = QTreeWidgetItem((f"{info.name}: {len(info.unreadable)} file(s) left out", ""))
                for path, reason in info.unreadable:
                    top.addChild(QTreeWidgetItem((path, reason)))
                self.unreadable.addTopLevelItem(top)

    # --- register ---
    def choose_folder(self) -> None:
        chosen = QFileDialog.getExistingDirectory(self, "Dataset folder (with NORMAL and PNEUMONIA subfolders)")
        if chosen:
            self.path_field.setText(chosen)

    def choose_csv(self) -> None:
        chosen, _ = QFileDialog.getOpenFileName(self, "Dataset CSV (path,label)", "", "CSV (*.csv);;All files (*)")
        if chosen:
            self.path_field.setText(chosen)

    def register(self) -> bool:
        """Scan and register in the background; the outcome shows under the table (and ``registration_finished``)."""
        if self.session is None:
            return False
        name, source = self.name_field.text().strip(), self.path_field.text().strip()
        if not name or not source:
            self.say("Give the dataset a name and choose its folder or CSV file.", error=True)
            return False
        session, datasets = self.session, self.node.datasets
        started = self.calls.start(
            lambda report: datasets.register(session, name, Path(source), progress=report),
            self._on_registered, self._on_register_failed, self._on_progress,
        )
        if started:
            self.say(f"Scanning {source} …")
        return started

    def _on_busy(self, busy: bool) -> None:
        for widget in (self.register_button, self.remove_button, self.folder_button, self.csv_button,
                       self.confirmed_button):
            widget.setEnabled(not busy)
        self.progress.setVisible(busy)
        if busy:
            self.progress.setRange(0, 0)  # "busy" until the first report arrives

    def _on_progress(self, done: int, total: int) -> None:
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)
        self.progress.setFormat(f"{done} of {total} files")

    def _on_registered(self, info: DatasetInfo) -> None:
        left_out = f"; {len(info.unreadable)} file(s) could not be read (listed below)" if info.unreadable else ""
        self.say(f"Registered {info.name}: {info.normal} normal and {info.pneumonia} pneumonia images, "
                 f"{info.training_count} for training and {info.validation_count} for validation{left_out}.")
        if info.kind != "readings":
            self.name_field.clear()
            self.path_field.clear()
        self.refresh()
        self.changed.emit()
        self.registration_finished.emit(True)

    def _on_register_failed(self, message: str) -> None:
        self.say(f"The dataset was not registered: {message}", error=True)
        self.registration_finished.emit(False)

    # --- remove ---
    def select(self, name: str) -> None:
        self.table.selectRow([d.name for d in self.datasets].index(name))

    def selected(self) -> DatasetInfo | None:
        rows = self.table.selectionModel().selectedRows()
        return self.datasets[rows[0].row()] if rows else None

    def remove_selected(self) -> bool:
        info = self.selected()
        if info is None or self.session is None:
            self.say("Select a dataset first.", error=True)
            return False
        if not self.ask("Remove dataset", f"Remove the dataset {info.name}? Its files are not deleted; approvals "
                                          "that use it can no longer train."):
            return False
        try:
            self.node.datasets.remove(self.session, info.id)
        except NodeError as error:
            self.say(str(error), error=True)
            return False
        except Exception as error:  # shown, never a crash
            self.say(plain_error(error), error=True)
            return False
        self.say(f"Removed {info.name}. Its files were left where they are.")
        self.refresh()
        self.changed.emit()
        return True

    def shutdown(self) -> None:
        self.calls.shutdown()


__all__ = ["DatasetsPage"]
