"""The Federation page (manage_federation): enrol this workstation with a coordinator (address, one-time code, the
federation's CA certificate, a node name), see its approval state and where its key is kept, the training plans the
coordinator offers with their approval state here, take part in training, and the "what left this machine" log.

Every request runs in the background through ``pneumodesk.client`` (which records it in the egress log); the
node's services check permissions. While the operator has not yet approved the node, the page asks every
``poll_interval_ms``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import (
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from pneumodesk.errors import PneumoDeskError
from pneumodesk.federation.vocabulary import MembershipStatus, PlanStatus
from pneumodesk.node import NodeService, Permission

from ..dialogs.plan_review import PlanReviewDialog
from ..widgets.egress_panel import EgressPanel
from ..widgets.fields import message_label, show_message, text_field
from ..widgets.participation_panel import ParticipationPanel
from ..widgets.roster_peers_panel import RosterPeersPanel
from ..widgets.round_charts_panel import RoundChartsPanel
from ..widgets.tables import read_only_table
from ..workers.background import BackgroundCalls, plain_error
from .base import SessionPage

if TYPE_CHECKING:
    from pneumodesk.client.api import PlanSummary
    from pneumodesk.client.keys import NodeKeyStore
    from pneumodesk.node.membership import Membership

PLAN_COLUMNS = ("Plan", "Identity", "Published", "State", "On this workstation")
POLL_INTERVAL_MS = 5000

STATE_TEXT = {
    None: "Not enrolled: this workstation is not part of a federation.",
    MembershipStatus.PENDING: "Enrolled — waiting for the federation operator to approve this workstation.",
    MembershipStatus.APPROVED: "Approved: this workstation is a member of the federation.",
    MembershipStatus.REVOKED: "Revoked by the federation operator: enrol again with a new code to take part.",
}


def _list_plans(node: NodeService, key_store: NodeKeyStore) -> list[PlanSummary]:
    from pneumodesk.client.enrolment import connect

    connection = connect(node, key_store)
    try:
        return list(connection.client.plans())
    finally:
        connection.close()


def _check_status(node: NodeService, key_store: NodeKeyStore) -> str:
    from pneumodesk.client.enrolment import connect, refresh_status

    connection = connect(node, key_store)
    try:
        return refresh_status(node, connection)
    finally:
        connection.close()


class FederationPage(SessionPage):
    status_changed = Signal(str)  # the membership state shown: "none", "pending", "approved" or "revoked"
    plans_listed = Signal()
    approvals_changed = Signal()

    def __init__(self, node: NodeService, home: Path, parent: QWidget | None = None, *,
                 key_store: NodeKeyStore | None = None) -> None:
        from pneumodesk.client.home_key_store import HomeKeyStore

        super().__init__(parent)
        self.node, self.home = node, home
        self.key_store = key_store if key_store is not None else HomeKeyStore(home)  # the one for this node
        self.plans: list[PlanSummary] = []
        self.dialogs: list[PlanReviewDialog] = []
        self.calls = BackgroundCalls("federation", self)
        self.calls.busy_changed.connect(self._on_busy)
        self.poll = QTimer(self)
        self.poll.setInterval(POLL_INTERVAL_MS)
        self.poll.timeout.connect(self._poll)

        outer = QVBoxLayout(self)
        outer.setContentsMargins(24, 20, 24, 12)
        outer.addWidget(QLabel("<h2>Federation</h2>"))
        top = QHBoxLayout()
        top.addWidget(self._build_connection(), 1)
        top.addWidget(self._build_enrol(), 1)
        outer.addLayout(top)
        middle = QHBoxLayout()
        middle.addWidget(self._build_plans(), 3)
        self.participation = ParticipationPanel(node, home, key_store=self.key_store)
        self.participation.round_finished.connect(self._refresh_egress_later)
        middle.addWidget(self.participation, 2)
        outer.addLayout(middle, 1)
        self.egress = EgressPanel(node)
        self.round_charts = RoundChartsPanel(node)
        bottom = QHBoxLayout()
        bottom.addWidget(self.egress, 3)
        bottom.addWidget(self.round_charts, 2)
        outer.addLayout(bottom, 1)
        self.roster_peers = RosterPeersPanel(node, home)
        outer.addWidget(self.roster_peers)
        self.message = message_label("Federation message")
        outer.addWidget(self.message)

    # --- layout ---
    def _build_connection(self) -> QGroupBox:
        box = QGroupBox("Connection")
        layout = QVBoxLayout(box)
        self.state_label = QLabel()
        self.state_label.setAccessibleName("Federation state")
        self.state_label.setWordWrap(True)
        self.details = QLabel()
        self.details.setObjectName("muted")
        self.details.setWordWrap(True)
        self.key_label = QLabel()
        self.key_label.setAccessibleName("Where the node key is kept")
        self.key_label.setWordWrap(True)
        row = QHBoxLayout()
        self.check_button = QPushButton("Check approval now")
        self.check_button.clicked.connect(self.check_status)
        self.leave_button = QPushButton("Leave federation…")
        self.leave_button.clicked.connect(self.leave)
        row.addWidget(self.check_button)
        row.addWidget(self.leave_button)
        row.addStretch(1)
        for widget in (self.state_label, self.details, self.key_label):
            layout.addWidget(widget)
        layout.addLayout(row)
        layout.addStretch(1)
        return box

    def _build_enrol(self) -> QGroupBox:
        self.enrol_box = QGroupBox("Enrol with a coordinator")
        form = QFormLayout(self.enrol_box)
        self.url_field = text_field("Coordinator address")
        self.url_field.setPlaceholderText("https://coordinator.example.org:8443")
        self.code_field = text_field("One-time enrolment code")
        self.ca_field = QLineEdit()
        self.ca_field.setAccessibleName("Federation CA certificate file")
        self.ca_field.setPlaceholderText("ca.pem from the federation operator")
        ca_button = QPushButton("Choose…")
        ca_button.clicked.connect(self.choose_ca)
        ca_row = QHBoxLayout()
        ca_row.addWidget(self.ca_field, 1)
        ca_row.addWidget(ca_button)
        self.name_field = text_field("Node name")
        self.name_field.setPlaceholderText("e.g. St Mary's Radiology")
        self.enrol_button = QPushButton("Enrol")
        self.enrol_button.setAccessibleName("Enrol this workstation")
        self.enrol_button.clicked.connect(self.enrol)
        form.addRow("Coordinator address", self.url_field)
        form.addRow("One-time code", self.code_field)
        form.addRow("CA certificate", ca_row)
        form.addRow("Node name", self.name_field)
        form.addRow("", self.enrol_button)
        return self.enrol_box

    def _build_plans(self) -> QGroupBox:
        box = QGroupBox("Training plans offered by the coordinator")
        layout = QVBoxLayout(box)
        self.plans_table = read_only_table("Training plans offered", PLAN_COLUMNS)
        layout.addWidget(self.plans_table, 1)
        row = QHBoxLayout()
        self.refresh_plans_button = QPushButton("Refresh plans")
        self.refresh_plans_button.clicked.connect(self.refresh_plans)
        self.review_button = QPushButton("Review…")
        self.review_button.setAccessibleName("Review the selected plan")
        self.review_button.clicked.connect(self.review_selected)
        row.addWidget(self.refresh_plans_button)
        row.addWidget(self.review_button)
        row.addStretch(1)
        layout.addLayout(row)
        return box

    # --- session and state (reading on show: SessionPage) ---
    def session_changed(self) -> None:
        # The panels first: a refresh also refreshes the egress log.
        self.egress.set_session(self.session)
        self.round_charts.set_session(self.session)
        self.participation.set_session(self.session)
        self.roster_peers.set_session(self.session)
        if self.session is None:
            self.poll.stop()

    def say(self, text: str, error: bool = False) -> None:
        show_message(self.message, text, error)

    def membership(self) -> Membership | None:
        return self.node.membership.get()

    def may_refresh(self) -> bool:
        return self.session is not None and self.session.can(Permission.MANAGE_FEDERATION)

    def refresh(self) -> None:
        """Show the stored membership and key status, the egress log, and (when approved) fetch the plans."""
        if not self.may_refresh():
            return
        self._stale = False
        self._show_membership()
        self.egress.refresh()
        self.round_charts.refresh()
        membership = self.membership()
        if membership is not None and membership.status == MembershipStatus.APPROVED:
            self.refresh_plans()

    def _show_membership(self) -> None:
        membership = self.membership()
        status = None if membership is None else membership.status
        self.state_label.setText(f"<b>{STATE_TEXT[status]}</b>")
        if membership is None:
            self.details.setText("")
        else:
            enrolled = membership.enrolled_at.astimezone().strftime("%Y-%m-%d %H:%M")
            self.details.setText(
                f"Coordinator {membership.coordinator_url} · federation {membership.federation}<br>"
                f"This node: {membership.node_name} (id {membership.node_id}), enrolled {enrolled}<br>"
                f"Pinned CA certificate sha256 {membership.ca_pem_sha256[:16]}…")
        try:
            self.key_label.setText(self.key_store.status_text())
        except Exception as error:
            self.key_label.setText(plain_error(error))
        self.enrol_box.setVisible(status in (None, MembershipStatus.REVOKED))
        self.check_button.setVisible(status is not None)
        self.leave_button.setVisible(status is not None)
        if status == MembershipStatus.PENDING:
            self.poll.start()
        else:
            self.poll.stop()
        self.participation.set_membership(membership)
        self.status_changed.emit(status or "none")

    def _on_busy(self, busy: bool) -> None:
        for button in (self.enrol_button, self.check_button, self.refresh_plans_button):
            button.setEnabled(not busy)

    # --- enrolment ---
    def choose_ca(self) -> None:
        chosen, _ = QFileDialog.getOpenFileName(self, "Federation CA certificate", "", "PEM (*.pem *.crt);;All (*)")
        if chosen:
            self.ca_field.setText(chosen)

    def enrol(self) -> bool:
        from pneumodesk.client.enrolment import enrol

        if self.session is None:
            return False
        node, session, home, keys = self.node, self.session, self.home, self.key_store
        url, code, name = self.url_field.text().strip(), self.code_field.text().strip(), self.name_field.text()
        ca = self.ca_field.text().strip()
        if not (url and code and ca and name.strip()):
            self.say("Fill in the coordinator address, the one-time code, the CA certificate and a node name.",
                     error=True)
            return False
        started = self.calls.start(
            lambda _report: enrol(node, session, home, url, code, Path(ca), name, key_store=keys),
            self._on_enrolled, self._on_failed)
        if started:
            self.say(f"Enrolling with {url} …")
        return started

    def _on_enrolled(self, membership: Membership) -> None:
        self.code_field.clear()
        self.say("Enrolled. The federation operator must now approve this workstation; this page checks every few "
                 "seconds.")
        self._show_membership()
        self.egress.refresh()
        self.round_charts.refresh()

    def _on_failed(self, message: str) -> None:
        self.say(message, error=True)
        self.egress.refresh()

    def check_status(self) -> bool:
        node, keys = self.node, self.key_store
        return self.calls.start(lambda _report: _check_status(node, keys), self._on_status, self._on_failed)

    def _poll(self) -> None:
        if not self.calls.busy:
            self.check_status()

    def _on_status(self, status: str) -> None:
        previous = self.state_label.text()
        self._show_membership()
        self.egress.refresh()
        self.round_charts.refresh()
        if status == MembershipStatus.APPROVED:
            if "Approved" not in previous:
                self.say("The federation operator approved this workstation.")
            self.refresh_plans()

    def leave(self) -> bool:
        from ..dialogs.confirm import ask_yes_no

        if self.session is None or not ask_yes_no(self, "Leave federation", "Leave the federation? This workstation "
                                                  "stops taking part; to return it must enrol again."):
            return False
        try:
            self.node.membership.leave(self.session)
        except Exception as error:
            self.say(plain_error(error), error=True)
            return False
        self.plans = []
        self._fill_plans()
        self._show_membership()
        return True

    # --- plans ---
    def refresh_plans(self) -> bool:
        node, keys = self.node, self.key_store
        return self.calls.start(lambda _report: _list_plans(node, keys), self._on_plans, self._on_failed)

    def _on_plans(self, plans: list[PlanSummary]) -> None:
        self.plans = plans
        self._fill_plans()
        self.egress.refresh()
        self.plans_listed.emit()

    def approval_state(self, sha: str) -> str:
        approval = self.node.approvals.active(sha)
        if approval is None:
            return "not approved"
        return f"approved by {approval.approved_by}"

    def _fill_plans(self) -> None:
        self.plans_table.setRowCount(len(self.plans))
        for r, summary in enumerate(self.plans):
            values = (summary.name, summary.plan_sha256[:12] + "…", summary.published[:16].replace("T", " "),
                      summary.status, self.approval_state(summary.plan_sha256))
            for c, text in enumerate(values):
                item = QTableWidgetItem(text)
                if c == 1:
                    item.setToolTip(summary.plan_sha256)
                self.plans_table.setItem(r, c, item)
        self.participation.set_plans([(s.plan_sha256, s.name) for s in self.plans
                                      if s.status == PlanStatus.ACTIVE and self.node.approvals.active(s.plan_sha256)])

    def select_plan(self, sha: str) -> None:
        self.plans_table.selectRow([s.plan_sha256 for s in self.plans].index(sha))

    def review_selected(self) -> PlanReviewDialog | None:
        from pneumodesk.client.answers import published_plan
        from pneumodesk.client.errors import ProtocolError

        rows = self.plans_table.selectionModel().selectedRows()
        membership = self.membership()
        if not rows or self.session is None or membership is None:
            self.say("Select a plan first.", error=True)
            return None
        summary = self.plans[rows[0].row()]
        try:
            plan = published_plan(summary)  # the one check of a published plan: valid text that hashes to its id
        except ProtocolError as error:
            self.say(plain_error(error), error=True)
            return None
        except PneumoDeskError as error:
            self.say(f"The coordinator's plan cannot be read: {plain_error(error)}", error=True)
            return None
        dialog = PlanReviewDialog(self.node, self.session, plan, membership.coordinator_url, self)
        dialog.approved.connect(lambda _a: self._after_approval_change())
        dialog.withdrawn.connect(lambda _s: self._after_approval_change())
        self.dialogs.append(dialog)
        dialog.finished.connect(lambda _=0: self.dialogs.remove(dialog) if dialog in self.dialogs else None)
        dialog.show()
        return dialog

    def _after_approval_change(self) -> None:
        self._fill_plans()
        self.approvals_changed.emit()

    def approvals_updated(self) -> None:
        """An approval was given or withdrawn elsewhere (Training page): show the plans' states again."""
        self._fill_plans()

    def _refresh_egress_later(self) -> None:
        self.egress.refresh()
        self.round_charts.refresh()

    def shutdown(self) -> None:
        self.poll.stop()
        self.participation.shutdown()
        self.round_charts.shutdown()
        self.calls.shutdown()
        for dialog in list(self.dialogs):
            dialog.calls.shutdown()
            dialog.close()


__all__ = ["POLL_INTERVAL_MS", "FederationPage"]
