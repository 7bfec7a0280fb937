"""The Audit page (view_audit): the log filtered by user, action and dates, its chain check, and CSV export."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from PySide6.QtCore import QDate
from PySide6.QtWidgets import (
    QComboBox,
    QDateEdit,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from pneumodesk.node import AuditRecord, NodeError, NodeService
from pneumodesk.node.permissions import Permission

from ..export import default_export_name
from ..widgets.tables import read_only_table
from .base import SessionPage

COLUMNS = ("#", "Time", "User", "Action", "Target", "Outcome", "Details")
ALL = ""


def _local_time(iso: str) -> str:
    return dt.datetime.fromisoformat(iso).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def _day(date: QDate) -> dt.date:
    return dt.date(date.year(), date.month(), date.day())


class AuditPage(SessionPage):
    def __init__(self, node: NodeService, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.node = node
        self.records: list[AuditRecord] = []
        outer = QVBoxLayout(self)
        outer.setContentsMargins(24, 20, 24, 12)
        outer.addWidget(QLabel("<h2>Audit log</h2>"))
        bar = QHBoxLayout()
        self.user_filter = QComboBox()
        self.user_filter.setAccessibleName("Filter by user")
        self.action_filter = QComboBox()
        self.action_filter.setAccessibleName("Filter by action")
        today = QDate.currentDate()
        self.since = QDateEdit(today.addDays(-30))
        self.since.setAccessibleName("From date")
        self.until = QDateEdit(today)
        self.until.setAccessibleName("To date")
        for edit in (self.since, self.until):
            edit.setCalendarPopup(True)
            edit.setDisplayFormat("yyyy-MM-dd")
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.clicked.connect(self.refresh)
        self.export_button = QPushButton("Export CSV…")
        self.export_button.clicked.connect(self.export_dialog)
        self.verify_button = QPushButton("Verify chain")
        self.verify_button.clicked.connect(self.verify)
        for widget in (QLabel("User"), self.user_filter, QLabel("Action"), self.action_filter, QLabel("From"),
                       self.since, QLabel("to"), self.until, self.refresh_button):
            bar.addWidget(widget)
        bar.addStretch(1)
        bar.addWidget(self.verify_button)
        bar.addWidget(self.export_button)
        outer.addLayout(bar)
        for combo in (self.user_filter, self.action_filter):
            combo.currentIndexChanged.connect(lambda _=0: self.refresh())
        for edit in (self.since, self.until):
            edit.dateChanged.connect(lambda _=None: self.refresh())
        self.table = read_only_table("Audit entries", COLUMNS, single_selection=False)
        outer.addWidget(self.table, 1)
        self.message = QLabel()
        self.message.setObjectName("muted")
        self.message.setAccessibleName("Audit message")
        outer.addWidget(self.message)

    # --- session (reading on show: SessionPage) ---
    def may_refresh(self) -> bool:
        return self.session is not None and self.session.can(Permission.VIEW_AUDIT)

    def _fill_filters(self) -> None:
        try:
            records = self.node.read_audit(self.session) if self.session else []
        except NodeError:
            records = []
        users = sorted({r.user for r in records if r.user})
        for combo, values, label in ((self.user_filter, users, "All users"),
                                     (self.action_filter, self.node.audit.actions(), "All actions")):
            current = combo.currentData()
            combo.blockSignals(True)
            combo.clear()
            combo.addItem(label, ALL)
            for value in values:
                combo.addItem(value, value)
            combo.setCurrentIndex(max(combo.findData(current), 0))
            combo.blockSignals(False)

    def set_filters(self, user: str = ALL, action: str = ALL) -> None:
        for combo, value in ((self.user_filter, user), (self.action_filter, action)):
            combo.blockSignals(True)
            combo.setCurrentIndex(max(combo.findData(value), 0))
            combo.blockSignals(False)
        self.refresh()

    def _range(self) -> tuple[dt.datetime, dt.datetime]:
        since = dt.datetime.combine(_day(self.since.date()), dt.time.min).astimezone()
        until = dt.datetime.combine(_day(self.until.date()), dt.time.max).astimezone()
        return since, until

    def refresh(self) -> None:
        """Show the entries for the filters (after a session change, the filters' users and actions first)."""
        if self.session is None:
            return
        if self._stale:
            self._stale = False
            self._fill_filters()
        since, until = self._range()
        try:
            self.records = self.node.read_audit(self.session, self.user_filter.currentData() or None,
                                                self.action_filter.currentData() or None, since, until)
        except NodeError as error:
            self.records = []
            self.message.setText(str(error))
        self.table.setRowCount(len(self.records))
        for r, record in enumerate(self.records):
            details = ", ".join(f"{k}={v}" for k, v in sorted(record.details.items()))
            for c, text in enumerate((str(record.id), _local_time(record.time), record.user or "—", record.action,
                                      record.target, record.outcome, details)):
                self.table.setItem(r, c, QTableWidgetItem(text))
        self.message.setText(f"{len(self.records)} entries shown.")

    def verify(self) -> bool:
        report = self.node.verify_audit()
        if report.intact:
            self.message.setText(f"Chain intact: all {report.checked} entries verified.")
        else:
            self.message.setText(f"Chain broken at entry {report.first_bad_id}: {report.problem}.")
        return report.intact

    def export_csv(self, path: Path) -> Path:
        """Write the entries shown (current filters) as CSV, through the service (view_audit, audited)."""
        assert self.session is not None
        written = self.node.export_audit_csv(self.session, path, self.records)
        self.message.setText(f"Saved {written.name} ({len(self.records)} entries).")
        return written

    def export_dialog(self) -> None:
        name = default_export_name("audit", "csv")
        chosen, _ = QFileDialog.getSaveFileName(self, "Export audit log", str(Path.home() / name), "CSV (*.csv)")
        if chosen:
            try:
                self.export_csv(Path(chosen))
            except (NodeError, OSError) as error:
                self.message.setText(str(error))


__all__ = ["AuditPage"]
