"""The Query page (predict): search the hospital's PACS, pick series, retrieve them in the background with progress
and Cancel, and hand the retrieved radiographs to the worklist.

Invariants: patient attributes are shown in the results table only; they are cleared when the session changes
(sign-out, another user) and never written anywhere by this page. Search and retrieval run in a QThread
(``BackgroundCalls``); Cancel takes effect between instances and keeps what already arrived. Instances that are not
single-frame CR/DX chest images are listed under the table with their reason.
"""

from __future__ import annotations

import datetime as dt

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QProgressBar,
    QPushButton,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from pneumodesk.pacs.cancel import CancelToken
from pneumodesk.pacs.errors import PacsSettingsError
from pneumodesk.pacs.query import DEFAULT_MODALITIES, SeriesRow, StudyQuery
from pneumodesk.pacs.retrieve import RetrieveOutcome
from pneumodesk.pacs.service import PacsService

from ..widgets.tables import read_only_table
from ..workers.background import BackgroundCalls, Report
from .base import SessionPage

COLUMNS = ("Study date", "Patient ID", "Patient name", "Accession", "Modality", "Body part", "Images", "Description")


def _date(text: str, which: str) -> dt.date | None:
    text = text.strip()
    if not text:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise PacsSettingsError(f"The {which} date must be written as YYYY-MM-DD (e.g. 2026-12-01).") from None


class QueryPage(SessionPage):
    retrieved = Signal(list)  # list[Path]: radiographs in the cache, for the worklist
    retrieval_progress = Signal(int, int)  # instances handled, instances expected (0: the PACS did not say)

    def __init__(self, pacs: PacsService, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.pacs = pacs
        self.rows: list[SeriesRow] = []
        self.calls = BackgroundCalls("pacs", self)
        self.calls.busy_changed.connect(self._set_busy)
        self._cancel: CancelToken | None = None
        self.last_outcome: RetrieveOutcome | None = None

        outer = QVBoxLayout(self)
        outer.setContentsMargins(24, 20, 24, 12)
        outer.addWidget(QLabel("<h2>Query the PACS</h2>"))
        form = QFormLayout()
        self.connection = QComboBox()
        self.connection.setAccessibleName("PACS connection")
        self.patient_id = QLineEdit()
        self.patient_id.setAccessibleName("Patient ID")
        self.patient_name = QLineEdit()
        self.patient_name.setAccessibleName("Patient name")
        self.patient_name.setPlaceholderText("e.g. DOE* (wildcards allowed)")
        self.accession = QLineEdit()
        self.accession.setAccessibleName("Accession number")
        self.date_from = QLineEdit()
        self.date_from.setAccessibleName("Study date from")
        self.date_from.setPlaceholderText("YYYY-MM-DD")
        self.date_to = QLineEdit()
        self.date_to.setAccessibleName("Study date to")
        self.date_to.setPlaceholderText("YYYY-MM-DD")
        dates = QHBoxLayout()
        dates.addWidget(self.date_from)
        dates.addWidget(QLabel("to"))
        dates.addWidget(self.date_to)
        self.modalities = QLineEdit(", ".join(DEFAULT_MODALITIES))
        self.modalities.setAccessibleName("Modalities")
        self.body_part = QLineEdit()
        self.body_part.setAccessibleName("Body part")
        self.body_part.setPlaceholderText("e.g. CHEST")
        form.addRow("PACS", self.connection)
        form.addRow("Patient ID", self.patient_id)
        form.addRow("Patient name", self.patient_name)
        form.addRow("Accession", self.accession)
        form.addRow("Study date", dates)
        form.addRow("Modality", self.modalities)
        form.addRow("Body part", self.body_part)
        outer.addLayout(form)

        buttons = QHBoxLayout()
        self.search_button = QPushButton("Search")
        self.search_button.clicked.connect(self.search)
        self.retrieve_button = QPushButton("Retrieve and predict")
        self.retrieve_button.setEnabled(False)
        self.retrieve_button.clicked.connect(self.retrieve_selected)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        self.progress = QProgressBar()
        self.progress.setAccessibleName("Retrieval progress")
        self.progress.setVisible(False)
        for widget in (self.search_button, self.retrieve_button, self.cancel_button):
            buttons.addWidget(widget)
        buttons.addWidget(self.progress, 1)
        outer.addLayout(buttons)
        self.status = QLabel("")
        self.status.setAccessibleName("Query status")
        self.status.setWordWrap(True)
        outer.addWidget(self.status)
        self.table = read_only_table("Series found", COLUMNS, single_selection=False)
        self.table.itemSelectionChanged.connect(self._selection_changed)
        outer.addWidget(self.table, 3)
        outer.addWidget(QLabel("Skipped instances"))
        self.skipped = QListWidget()
        self.skipped.setAccessibleName("Skipped instances")
        outer.addWidget(self.skipped, 1)

    # --- session ---
    def session_changed(self) -> None:
        """Patient attributes never outlive the session that searched for them."""
        self.cancel()
        self.rows = []
        self.table.setRowCount(0)
        self.skipped.clear()
        self.status.setText("")

    def refresh(self) -> None:
        self._stale = False
        if self.session is None:
            return
        current = self.connection.currentText()
        self.connection.clear()
        try:
            names = [c.name for c in self.pacs.connections.list(self.session)]
        except Exception as error:  # the store could not be read: say so instead of an empty list
            from ..workers.background import plain_error

            self.status.setText(plain_error(error))
            return
        self.connection.addItems(names)
        if current in names:
            self.connection.setCurrentText(current)
        if not names:
            self.status.setText("No PACS connection is set up yet; an administrator adds one in Settings.")

    # --- search ---
    def query(self) -> StudyQuery:
        modalities = tuple(part.strip().upper() for part in self.modalities.text().replace(";", ",").split(","))
        return StudyQuery(self.patient_id.text(), self.patient_name.text(), self.accession.text(),
                          _date(self.date_from.text(), "start"), _date(self.date_to.text(), "end"),
                          tuple(m for m in modalities if m) or DEFAULT_MODALITIES, self.body_part.text()).validated()

    def search(self) -> None:
        session, name = self.session, self.connection.currentText()
        if session is None or self.calls.busy:
            return
        if not name:
            self.status.setText("Choose a PACS connection first.")
            return
        try:
            query = self.query()
        except PacsSettingsError as error:
            self.status.setText(str(error))
            return
        self.status.setText("Searching…")
        self.calls.start(lambda _report: self.pacs.query(session, name, query), self._on_found, self._on_failed)

    def _on_found(self, rows: list[SeriesRow]) -> None:
        self.rows = rows
        self.table.setRowCount(len(rows))
        for index, row in enumerate(rows):
            values = (row.study_date, row.patient_id, row.patient_name, row.accession, row.modality, row.body_part,
                      "" if row.instances is None else str(row.instances), row.description)
            for column, value in enumerate(values):
                self.table.setItem(index, column, QTableWidgetItem(value))
        self.status.setText(f"{len(rows)} series found." if rows else "No series matched the search.")
        self._selection_changed()

    def _on_failed(self, message: str) -> None:
        self.status.setText(message)

    # --- retrieve ---
    def selected_rows(self) -> list[SeriesRow]:
        indexes = sorted({index.row() for index in self.table.selectedIndexes()})
        return [self.rows[i] for i in indexes if i < len(self.rows)]

    def _selection_changed(self) -> None:
        self.retrieve_button.setEnabled(bool(self.selected_rows()) and not self.calls.busy)

    def retrieve_selected(self) -> None:
        session, name, series = self.session, self.connection.currentText(), self.selected_rows()
        if session is None or not series or self.calls.busy:
            return
        cancel = CancelToken()
        self._cancel = cancel
        self.skipped.clear()
        self.progress.setRange(0, 0)
        self.progress.setVisible(True)
        self.status.setText(f"Retrieving {len(series)} series…")

        def call(report: Report) -> RetrieveOutcome:
            return self.pacs.retrieve(session, name, series, cancel, report)

        self.calls.start(call, self._on_retrieved, self._on_retrieve_failed, self._on_progress)

    def _on_progress(self, done: int, total: int) -> None:
        self.progress.setRange(0, total)
        self.progress.setValue(done)
        self.retrieval_progress.emit(done, total)
        self.status.setText(f"Retrieved {done} of {total} instances…" if total else f"Retrieved {done} instances…")

    def _on_retrieved(self, outcome: RetrieveOutcome) -> None:
        self.last_outcome = outcome
        self.progress.setVisible(False)
        for item in outcome.skipped:
            self.skipped.addItem(f"{item.where}: {item.reason}")
        note = "Cancelled: " if outcome.cancelled else ""
        self.status.setText(f"{note}{len(outcome.files)} radiograph(s) sent to the worklist, "
                            f"{len(outcome.skipped)} instance(s) skipped.")
        if outcome.files:
            self.retrieved.emit(list(outcome.files))

    def _on_retrieve_failed(self, message: str) -> None:
        self.progress.setVisible(False)
        self.status.setText(message)

    def cancel(self) -> None:
        if self._cancel is not None:
            self._cancel.cancel()
            self.cancel_button.setEnabled(False)
            self.status.setText("Cancelling after the instance in hand…")

    def _set_busy(self, busy: bool) -> None:
        self.search_button.setEnabled(not busy)
        self.cancel_button.setEnabled(busy and self._cancel is not None and not self._cancel.cancelled)
        if not busy:
            self._cancel = None
        self._selection_changed()

    def shutdown(self) -> None:
        self.cancel()
        self.calls.shutdown()


__all__ = ["QueryPage"]
