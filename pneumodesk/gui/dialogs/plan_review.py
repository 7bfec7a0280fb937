"""The plan review dialog: a training plan in plain words for one of this node's datasets, its privacy cost, the
node policy's objections (if any) and the approve / withdraw buttons.

The dialog refuses nothing itself: it shows what ``pneumodesk.node`` would refuse and why, disables Approve then,
and the service checks again (policy, privacy budget, permission) when Approve is pressed.
"""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from pneumodesk.node import NodeError, NodeService, Permission, UserSession

from ..workers.background import BackgroundCalls, plain_error
from .plan_text import plan_html

if TYPE_CHECKING:
    from pneumodesk.federation import TrainingPlan
    from pneumodesk.node.approvals import Approval
    from pneumodesk.node.datasets import DatasetInfo
    from pneumodesk.training.privacy import PrivacyCost


def compute_cost(plan: TrainingPlan, examples: int) -> PrivacyCost | None:
    """``training.privacy.plan_privacy_cost`` (imports Opacus, so it runs off the GUI thread)."""
    from pneumodesk.training.privacy import plan_privacy_cost

    return plan_privacy_cost(plan, examples)


def sentence(reason: str) -> str:
    """A policy reason as a sentence: capital first letter, full stop."""
    text = reason[:1].upper() + reason[1:]
    return text if text.endswith(".") else text + "."


class PlanReviewDialog(QDialog):
    approved = Signal(object)  # Approval
    withdrawn = Signal(str)  # plan sha256
    reviewed = Signal()  # the description, cost and objections are up to date (for tests and screenshots)

    def __init__(self, node: NodeService, session: UserSession, plan: TrainingPlan, coordinator_url: str,
                 parent: QWidget | None = None, dataset_id: int | None = None) -> None:
        super().__init__(parent)
        self.node, self.session, self.plan, self.coordinator_url = node, session, plan, coordinator_url
        self.setWindowTitle(f"Training plan: {plan.name}")
        self.setAccessibleName("Training plan review")
        self.resize(760, 720)
        self.cost: PrivacyCost | None = None
        self.cost_error: str | None = None
        self.violations: list[str] = []
        self.calls = BackgroundCalls("privacy-cost", self)
        self.datasets: list[DatasetInfo] = []

        layout = QVBoxLayout(self)
        row = QHBoxLayout()
        row.addWidget(QLabel("Train on dataset"))
        self.dataset_choice = QComboBox()
        self.dataset_choice.setAccessibleName("Dataset to train on")
        row.addWidget(self.dataset_choice, 1)
        layout.addLayout(row)
        self.description = QTextBrowser()
        self.description.setAccessibleName("The plan in plain words")
        layout.addWidget(self.description, 1)
        self.objections = QLabel()
        self.objections.setObjectName("error_text")
        self.objections.setAccessibleName("Why the plan cannot be approved")
        self.objections.setWordWrap(True)
        layout.addWidget(self.objections)
        self.state = QLabel()
        self.state.setObjectName("muted")
        self.state.setAccessibleName("Approval state")
        self.state.setWordWrap(True)
        layout.addWidget(self.state)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        self.withdraw_button = QPushButton("Withdraw approval")
        self.withdraw_button.clicked.connect(self.withdraw)
        self.approve_button = QPushButton("Approve")
        self.approve_button.setAccessibleName("Approve this plan")
        self.approve_button.clicked.connect(self.approve)
        self.close_button = QPushButton("Close")
        self.close_button.clicked.connect(self.reject)
        for button in (self.withdraw_button, self.approve_button, self.close_button):
            buttons.addWidget(button)
        layout.addLayout(buttons)

        self._load_datasets(dataset_id)
        self.dataset_choice.currentIndexChanged.connect(lambda _=0: self.review())
        self.review()

    # --- state ---
    @property
    def dataset(self) -> DatasetInfo | None:
        index = self.dataset_choice.currentIndex()
        return self.datasets[index] if 0 <= index < len(self.datasets) else None

    def _load_datasets(self, preferred: int | None) -> None:
        try:
            self.datasets = list(self.node.datasets.list(self.session))
        except NodeError as error:
            self.datasets = []
            self.cost_error = str(error)
        self.dataset_choice.blockSignals(True)
        for info in self.datasets:
            self.dataset_choice.addItem(f"{info.name} ({info.training_count} training images)", info.id)
        if preferred is not None and self.dataset_choice.findData(preferred) >= 0:
            self.dataset_choice.setCurrentIndex(self.dataset_choice.findData(preferred))
        self.dataset_choice.blockSignals(False)

    def active_approval(self) -> Approval | None:
        return self.node.approvals.active(self.plan.sha256)

    def review(self) -> None:
        """Recompute everything for the chosen dataset: the cost in the background, then the objections."""
        self.cost = None
        dataset = self.dataset
        if dataset is not None and self.plan.dp.enabled:
            self.cost_error = None
            plan, examples = self.plan, dataset.training_count
            if not self.calls.start(lambda _report: compute_cost(plan, examples), self._on_cost, self._on_cost_failed):
                self.calls.shutdown()
                self.calls.start(lambda _report: compute_cost(plan, examples), self._on_cost, self._on_cost_failed)
        self._update()

    def _on_cost(self, cost: PrivacyCost | None) -> None:
        if self.dataset is not None:
            self.cost = cost
        self._update()

    def _on_cost_failed(self, message: str) -> None:
        self.cost_error = message
        self._update()

    @property
    def cost_pending(self) -> bool:
        return self.plan.dp.enabled and self.dataset is not None and self.cost is None and self.cost_error is None

    def epsilon_total(self) -> float | None:
        return None if self.cost is None else float(self.cost.epsilon_total)

    def _objections(self) -> list[str]:
        from pneumodesk.node.policy import plan_violations

        reasons: list[str] = []
        if self.dataset is None:
            reasons.append(self.cost_error or "Register a dataset first (Datasets page): a plan is approved for one "
                                              "dataset.")
            return reasons
        if self.cost_error:
            reasons.append(self.cost_error)
        policy = self.node.policy.get()
        epsilon = self.epsilon_total()
        reasons += plan_violations(policy, self.plan, epsilon)
        if epsilon is not None:
            spent = self.node.ledger.spent(self.dataset.id)
            reserved = self.node.approvals.reserved(self.dataset.id, excluding=self.plan.sha256)
            cap = policy.epsilon_cap_per_dataset
            if epsilon <= cap < spent + reserved + epsilon - 1e-9:  # the plan alone fits; with the rest it does not
                held = f" and other approved plans may still spend ε = {reserved:.2f}" if reserved > 0 else ""
                reason = (f"The dataset {self.dataset.name} has spent ε = {spent:.2f}{held} of its cap {cap:g}; "
                          f"this plan would add ε = {epsilon:.2f}.")
                if reason not in reasons:
                    reasons.append(reason)
        return reasons

    def _update(self) -> None:
        dataset = self.dataset
        spent = cap = None
        reserved = 0.0
        if dataset is not None:
            spent, cap = self.node.ledger.spent(dataset.id), self.node.policy.get().epsilon_cap_per_dataset
            reserved = self.node.approvals.reserved(dataset.id, excluding=self.plan.sha256)
        self.description.setHtml(plan_html(self.plan, dataset, self.cost, spent=spent, cap=cap, reserved=reserved))
        approval = self.active_approval()
        may_approve = self.session.can(Permission.APPROVE_TRAINING)
        if self.cost_pending:
            self.violations = []
            self.objections.setText("")
            why = "Computing the privacy cost on this dataset…"
        else:
            self.violations = self._objections()
            self.objections.setText(
                "<b>This plan is outside this workstation's policy:</b><ul>"
                + "".join(f"<li>{escape(sentence(reason), quote=False)}</li>" for reason in self.violations)
                + "</ul>"
                if self.violations else ""
            )
            why = "It cannot be approved: see the reasons above." if self.violations else ""
        if approval is not None:
            when = approval.approved_at.astimezone().strftime("%Y-%m-%d %H:%M")
            why = f"Approved by {approval.approved_by} on {when}. Withdraw the approval to stop training on it."
        elif not may_approve:
            why = "Your role does not allow you to approve training."
        self.approve_button.setEnabled(approval is None and may_approve and not why)
        self.approve_button.setToolTip(why)
        self.withdraw_button.setVisible(approval is not None and may_approve)
        self.state.setText(why or "Within policy. Approving lets this workstation train on the dataset as described.")
        if not self.cost_pending:
            self.reviewed.emit()

    # --- actions ---
    def approve(self) -> bool:
        dataset = self.dataset
        if dataset is None or not self.approve_button.isEnabled():
            return False
        try:
            approval = self.node.approvals.approve(self.session, self.plan, dataset.id, self.coordinator_url,
                                                   self.epsilon_total())
        except Exception as error:  # PlanOutsidePolicy, PrivacyBudgetExceeded, PermissionDenied: shown as words
            self.state.setText(f"Not approved: {plain_error(error)}")
            return False
        self._update()
        self.approved.emit(approval)
        return True

    def withdraw(self) -> bool:
        try:
            self.node.approvals.withdraw(self.session, self.plan.sha256)
        except Exception as error:
            self.state.setText(f"Not withdrawn: {plain_error(error)}")
            return False
        self._update()
        self.withdrawn.emit(self.plan.sha256)
        return True

    def done(self, result: int) -> None:
        self.calls.shutdown()
        super().done(result)


__all__ = ["PlanReviewDialog", "compute_cost"]
