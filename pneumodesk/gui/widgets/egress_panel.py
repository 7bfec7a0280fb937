"""The "what left this machine" log: every request this node sent to its coordinator (time, endpoint, bytes, purpose),
read from the node's egress log, with CSV export through the service (which checks the permission and audits it)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QFileDialog,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from pneumodesk.node import NodeService, UserSession

from ..export import default_export_name
from ..workers.background import plain_error
from .tables import read_only_table

if TYPE_CHECKING:
    from pneumodesk.node.egress import EgressRecord

COLUMNS = ("Time", "Request", "Endpoint", "Bytes sent", "Bytes received", "Answer", "Purpose")
SHOWN = 500  # the newest requests shown; the CSV export has them all


def byte_text(count: int) -> str:
    for unit, size in (("MB", 1 << 20), ("kB", 1 << 10)):
        if count >= size:
            return f"{count / size:.1f} {unit}"
    return f"{count} B"


class EgressPanel(QGroupBox):
    def __init__(self, node: NodeService, parent: QWidget | None = None) -> None:
        super().__init__("What left this machine", parent)
        self.node = node
        self.session: UserSession | None = None
        self.records: list[EgressRecord] = []
        layout = QVBoxLayout(self)
        note = QLabel("Every request this workstation sent to the federation. Images, file names and per-image "
                      "values are never sent.")
        note.setWordWrap(True)
        layout.addWidget(note)
        self.table = read_only_table("Requests sent to the federation", COLUMNS, single_selection=False)
        layout.addWidget(self.table, 1)
        row = QHBoxLayout()
        self.totals = QLabel()
        self.totals.setAccessibleName("Totals sent")
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.clicked.connect(self.refresh)
        self.export_button = QPushButton("Export CSV…")
        self.export_button.clicked.connect(self.export_dialog)
        row.addWidget(self.totals, 1)
        row.addWidget(self.refresh_button)
        row.addWidget(self.export_button)
        layout.addLayout(row)

    def set_session(self, session: UserSession | None) -> None:
        self.session = session

    def refresh(self) -> None:
        if self.session is None:
            return
        try:
            self.records = list(self.node.egress.read(self.session, limit=SHOWN))
        except Exception as error:
            self.records = []
            self.totals.setText(plain_error(error))
            return
        self.table.setRowCount(len(self.records))
        for r, record in enumerate(self.records):
            answer = "no answer" if record.status is None else str(record.status)
            values = (record.time.astimezone().strftime("%Y-%m-%d %H:%M:%S"), record.method, record.endpoint,
                      byte_text(record.bytes_sent), byte_text(record.bytes_received), answer, record.purpose)
            for c, text in enumerate(values):
                item = QTableWidgetItem(text)
                if c in (3, 4):
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(r, c, item)
        totals = self.node.egress.totals()
        sent, requests = int(totals.get("bytes_sent", 0)), int(totals.get("requests", len(self.records)))
        self.totals.setText(f"{requests} request(s), {byte_text(sent)} sent in all.")

    def export_csv(self, path: Path) -> Path:
        assert self.session is not None
        written = self.node.egress.export_csv(self.session, path)
        self.totals.setText(f"Saved {written.name}.")
        return written

    def export_dialog(self) -> None:
        name = default_export_name("egress", "csv")
        chosen, _ = QFileDialog.getSaveFileName(self, "Export what left this machine", str(Path.home() / name),
                                                "CSV (*.csv)")
        if chosen:
            try:
                self.export_csv(Path(chosen))
            except Exception as error:
                self.totals.setText(plain_error(error))


__all__ = ["EgressPanel", "byte_text"]
