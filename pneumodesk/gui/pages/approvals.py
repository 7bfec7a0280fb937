"""The Training page (approve_training): the node policy, the training plans approved on this workstation (review,
withdraw), and the privacy ledger — how much of each dataset's privacy budget (ε) has been spent.

Everything is read when the page is shown, not at sign-in: the default policy lists the model registry's
architectures, which imports torch, and start-up must stay fast.
"""

from __future__ import annotations

import contextlib
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from pneumodesk.node import NodeError, NodeService, Permission
from pneumodesk.node.privacy_history import budget_history

from ..dialogs.plan_review import PlanReviewDialog
from ..widgets.budget_chart import BudgetChart
from ..widgets.fields import message_label
from ..widgets.policy_editor import PolicyEditor
from ..widgets.tables import read_only_table
from ..workers.background import plain_error
from .base import SessionPage

if TYPE_CHECKING:
    import datetime as dt

    from pneumodesk.federation import TrainingPlan
    from pneumodesk.node.approvals import Approval

APPROVAL_COLUMNS = ("Plan", "Identity", "Dataset", "ε (whole plan)", "Approved by", "Approved", "State")
LEDGER_COLUMNS = ("Dataset", "ε spent", "ε held by approvals", "Cap", "Left", "Rounds recorded")


def _when(value: dt.datetime | None) -> str:
    return value.astimezone().strftime("%Y-%m-%d %H:%M") if value is not None else "—"


def _number(value: float | None) -> str:
    if value is None:
        return "no DP"
    return "∞" if math.isinf(value) else f"{value:.2f}"


class ApprovalsPage(SessionPage):
    changed = Signal()  # an approval or the policy changed (the Federation page shows approval states)

    def __init__(self, node: NodeService, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.node = node
        self.approvals: list[Approval] = []
        self.dataset_names: dict[int, str] = {}
        self.dialogs: list[PlanReviewDialog] = []

        outer = QVBoxLayout(self)
        outer.setContentsMargins(24, 20, 24, 12)
        outer.addWidget(QLabel("<h2>Training plans and privacy</h2>"))
        intro = QLabel("A plan is approved by its identity (sha256): a changed plan needs a new approval. Plans "
                       "outside the policy below cannot be approved.")
        intro.setWordWrap(True)
        outer.addWidget(intro)
        columns = QHBoxLayout()
        self.policy_editor = PolicyEditor()
        self.policy_editor.save_requested.connect(self.save_policy)
        columns.addWidget(self.policy_editor, 2)
        right = QVBoxLayout()
        right.addWidget(QLabel("<b>Approved plans</b>"))
        self.approvals_table = read_only_table("Approved plans", APPROVAL_COLUMNS)
        right.addWidget(self.approvals_table, 2)
        buttons = QHBoxLayout()
        self.review_button = QPushButton("Review…")
        self.review_button.clicked.connect(self.review_selected)
        self.withdraw_button = QPushButton("Withdraw")
        self.withdraw_button.setAccessibleName("Withdraw the selected approval")
        self.withdraw_button.clicked.connect(self.withdraw_selected)
        self.open_plan_button = QPushButton("Review a plan file…")
        self.open_plan_button.clicked.connect(self.open_plan_file)
        for button in (self.review_button, self.withdraw_button, self.open_plan_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        right.addLayout(buttons)
        ledger_label = QLabel("<b>Privacy ledger</b>: ε spent per dataset, recorded before each update leaves")
        ledger_label.setToolTip("The budget follows the images: a dataset's figure is that of its most-used image, "
                                "counting every dataset that holds the same images (removed ones too).")
        right.addWidget(ledger_label)
        self.ledger_table = read_only_table("Privacy ledger", LEDGER_COLUMNS)
        right.addWidget(self.ledger_table, 1)
        self.budget_chart = BudgetChart()
        right.addWidget(self.budget_chart, 2)
        columns.addLayout(right, 3)
        outer.addLayout(columns, 1)
        self.message = message_label("Training message")
        outer.addWidget(self.message)

    # --- session (set_session and showEvent: SessionPage) ---
    def refresh(self) -> None:
        """Re-read the policy, the approvals and the ledger."""
        if self.session is None:
            return
        self._stale = False
        from pneumodesk.model.architectures import architecture_names

        policy = self.node.policy.get()
        self.policy_editor.show_policy(policy, architecture_names())
        self.policy_editor.set_editable(self.session.can(Permission.APPROVE_TRAINING))
        try:
            self.approvals = list(self.node.approvals.list(self.session))
        except NodeError as error:
            self.approvals = []
            self.message.setText(str(error))
        self.dataset_names = {}
        with contextlib.suppress(NodeError):  # a role that may not list datasets sees their numbers instead
            self.dataset_names = {d.id: d.name for d in self.node.datasets.list(self.session)}
        self._fill_approvals()
        self._fill_ledger(policy.epsilon_cap_per_dataset)

    def dataset_name(self, dataset_id: int) -> str:
        return self.dataset_names.get(dataset_id, f"dataset {dataset_id}")

    def _fill_approvals(self) -> None:
        from pneumodesk.federation import TrainingPlan

        self.approvals_table.setRowCount(len(self.approvals))
        for r, approval in enumerate(self.approvals):
            try:
                name = TrainingPlan.from_json_bytes(approval.plan_json).name
            except Exception:
                name = "(unreadable plan)"
            state = "withdrawn " + _when(approval.withdrawn_at) if approval.withdrawn_at else "active"
            values = (name, approval.plan_sha256[:12] + "…", self.dataset_name(approval.dataset_id),
                      _number(approval.epsilon_total), approval.approved_by, _when(approval.approved_at), state)
            for c, text in enumerate(values):
                item = QTableWidgetItem(text)
                if c == 1:
                    item.setToolTip(approval.plan_sha256)
                self.approvals_table.setItem(r, c, item)

    def _fill_ledger(self, cap: float) -> None:
        ids = sorted(set(self.dataset_names) | {a.dataset_id for a in self.approvals})
        self.budget_chart.show_histories(
            [budget_history(self.node.ledger, self.node.approvals, dataset_id, cap) for dataset_id in ids],
            {dataset_id: self.dataset_name(dataset_id) for dataset_id in ids})
        self.ledger_table.setRowCount(len(ids))
        for r, dataset_id in enumerate(ids):
            spent = self.node.ledger.spent(dataset_id)
            held = self.node.approvals.reserved(dataset_id)  # what approved plans may still spend
            entries = self.node.ledger.entries(dataset_id)
            values = (self.dataset_name(dataset_id), f"{spent:.2f}", f"{held:.2f}", f"{cap:g}",
                      f"{max(cap - spent - held, 0.0):.2f}", str(len(entries)))
            for c, text in enumerate(values):
                item = QTableWidgetItem(text)
                if c:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.ledger_table.setItem(r, c, item)

    # --- policy ---
    def save_policy(self, values: dict[str, Any]) -> bool:
        if self.session is None:
            return False
        try:
            policy = self.node.policy.get().with_settings(**values)
            self.node.policy.set(self.session, policy)
        except Exception as error:
            self.message.setText(plain_error(error))
            return False
        self.message.setText("Policy saved. Plans are checked against it before anyone is asked to approve them.")
        self.refresh()
        self.changed.emit()
        return True

    # --- approvals ---
    def selected(self) -> Approval | None:
        rows = self.approvals_table.selectionModel().selectedRows()
        return self.approvals[rows[0].row()] if rows else None

    def review_plan(self, plan: TrainingPlan, coordinator_url: str,
                    dataset_id: int | None = None) -> PlanReviewDialog | None:
        """Open the review dialog for ``plan`` (non-modal); approving or withdrawing there refreshes this page."""
        if self.session is None:
            return None
        dialog = PlanReviewDialog(self.node, self.session, plan, coordinator_url, self, dataset_id=dataset_id)
        dialog.approved.connect(lambda _approval: self._after_change("Plan approved."))
        dialog.withdrawn.connect(lambda _sha: self._after_change("Approval withdrawn."))
        self.dialogs.append(dialog)
        dialog.finished.connect(lambda _=0: self.dialogs.remove(dialog) if dialog in self.dialogs else None)
        dialog.show()
        return dialog

    def _after_change(self, text: str) -> None:
        self.refresh()
        self.message.setText(text)
        self.changed.emit()

    def review_selected(self) -> PlanReviewDialog | None:
        from pneumodesk.federation import TrainingPlan

        approval = self.selected()
        if approval is None:
            self.message.setText("Select an approved plan first.")
            return None
        return self.review_plan(TrainingPlan.from_json_bytes(approval.plan_json), approval.coordinator_url,
                                approval.dataset_id)

    def withdraw_selected(self) -> bool:
        approval = self.selected()
        if approval is None or self.session is None:
            self.message.setText("Select an approved plan first.")
            return False
        try:
            self.node.approvals.withdraw(self.session, approval.plan_sha256)
        except Exception as error:
            self.message.setText(plain_error(error))
            return False
        self._after_change("Approval withdrawn: this workstation will not train on that plan any more.")
        return True

    def open_plan_file(self) -> None:
        chosen, _ = QFileDialog.getOpenFileName(self, "Training plan (JSON)", "", "JSON (*.json);;All files (*)")
        if chosen:
            self.review_plan_file(Path(chosen))

    def review_plan_file(self, path: Path) -> PlanReviewDialog | None:
        from pneumodesk.federation import TrainingPlan

        try:
            data = path.read_bytes()
        except OSError as error:
            self.message.setText(f"The plan file cannot be read: {error.strerror or error}.")
            return None
        try:
            plan = TrainingPlan.from_json_bytes(data)
        except Exception as error:  # PlanError (a PneumoDeskError) says what is wrong with the plan
            self.message.setText(plain_error(error))
            return None
        membership = self.node.membership.get()
        return self.review_plan(plan, membership.coordinator_url if membership is not None else "")

    def shutdown(self) -> None:
        for dialog in list(self.dialogs):
            dialog.calls.shutdown()
            dialog.close()


__all__ = ["ApprovalsPage"]
