"""Approvals of training plans, by plan hash, for one dataset and one coordinator.

Invariants (DESIGN 2, 3, 9): a plan outside the node policy, or one whose whole ε would push the dataset past its
cap, is refused *before* anything is recorded (the refusal itself is audited) — the cap is per image: it counts what
each of the dataset's images spent and what active approvals on any dataset holding the same image may still spend
(their ε total less what they spent), so every approved plan can finish within the cap, however the same images
were registered; the approval names the plan by the sha256
of its canonical JSON, so a changed plan is a different hash and needs a new approval; withdrawing takes effect at
once (``active`` is asked before every round); every approval and withdrawal is audited with the plan hash.
"""

from __future__ import annotations

import builtins
import datetime as dt
import math
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from pneumodesk.federation.plan import TrainingPlan

from .accounts import AccountService
from .audit import DENIED, AuditLog
from .errors import ApprovalError, PlanOutsidePolicy, PrivacyBudgetExceeded, RegisteredDatasetError
from .ledger import PrivacyLedger
from .models import ApprovalRow, Dataset, utcnow
from .permissions import Permission
from .policy import PolicyService, plan_violations
from .session import UserSession
from .store import NodeStore


@dataclass(frozen=True)
class Approval:
    plan_sha256: str
    plan_json: str  # the canonical JSON that was approved
    dataset_id: int
    coordinator_url: str
    epsilon_total: float | None
    approved_by: str
    approved_at: dt.datetime
    withdrawn_at: dt.datetime | None

    @property
    def plan(self) -> TrainingPlan:
        return TrainingPlan.from_json_bytes(self.plan_json)


def _approval(row: ApprovalRow) -> Approval:
    return Approval(row.plan_sha256, row.plan_json, row.dataset_id, row.coordinator_url, row.epsilon_total,
                    row.approved_by, row.approved_at, row.withdrawn_at)


class ApprovalService:
    """``approve``/``withdraw``/``list`` need ``approve_training``; ``active`` (the engine's check) needs no actor."""

    def __init__(self, store: NodeStore, accounts: AccountService, audit: AuditLog, policy: PolicyService,
                 ledger: PrivacyLedger) -> None:
        self.store = store
        self.accounts = accounts
        self.audit = audit
        self.policy = policy
        self.ledger = ledger

    def approve(self, actor: UserSession, plan: TrainingPlan, dataset_id: int, coordinator_url: str,
                epsilon_total: float | None) -> Approval:
        """Approve ``plan`` on ``dataset_id``. Raises ``PlanOutsidePolicy`` (with ``.reasons``) or
        ``PrivacyBudgetExceeded`` before recording anything; ``ApprovalError`` if the plan is already approved."""
        sha = plan.sha256
        self.accounts.require(actor, Permission.APPROVE_TRAINING, sha)
        with self.store.session() as session:
            dataset = session.get(Dataset, dataset_id)
            if dataset is None or dataset.removed is not None:
                raise RegisteredDatasetError(f"There is no dataset {dataset_id}.")
            if self._active_row(session, sha) is not None:
                raise ApprovalError("This plan is already approved. Withdraw the approval first to change it.")
        cap = self.policy.get().epsilon_cap_per_dataset
        reasons = plan_violations(self.policy.get(), plan, epsilon_total if plan.dp.enabled else None)
        if reasons:
            self.audit.append(actor.username, "plan_refused", sha, DENIED,
                              {"dataset_id": dataset_id, "reasons": len(reasons), "first_reason": reasons[0]})
            raise PlanOutsidePolicy(reasons)
        if plan.dp.enabled and epsilon_total is not None:
            try:
                self.ledger.ensure_room(dataset_id, epsilon_total, cap, reserved=self.reserved(dataset_id))
            except PrivacyBudgetExceeded:
                self.audit.append(actor.username, "plan_refused", sha, DENIED,
                                  {"dataset_id": dataset_id, "reasons": 1, "first_reason": "privacy budget"})
                raise
        now = utcnow()
        epsilon = None if not plan.dp.enabled or epsilon_total is None else float(epsilon_total)
        row = ApprovalRow(plan_sha256=sha, plan_json=plan.canonical_json().decode("utf-8"), dataset_id=dataset_id,
                          coordinator_url=coordinator_url, epsilon_total=epsilon, approved_by=actor.username,
                          approved_at=now, withdrawn_at=None, withdrawn_by=None)
        with self.store.session() as session:
            session.add(row)
        self.audit.append(actor.username, "plan_approved", sha, details={
            "dataset_id": dataset_id, "epsilon_total": None if epsilon is None or not math.isfinite(epsilon)
            else round(epsilon, 6), "rounds": plan.rounds, "secure_aggregation": plan.secure_aggregation,
        })
        return _approval(row)

    def withdraw(self, actor: UserSession, plan_sha256: str) -> None:
        """Withdraw the active approval of the plan; the engine stops before its next round."""
        self.accounts.require(actor, Permission.APPROVE_TRAINING, plan_sha256)
        with self.store.session() as session:
            row = self._active_row(session, plan_sha256)
            if row is None:
                raise ApprovalError("This plan has no active approval to withdraw.")
            row.withdrawn_at, row.withdrawn_by = utcnow(), actor.username
            dataset_id = row.dataset_id
        self.audit.append(actor.username, "plan_withdrawn", plan_sha256, details={"dataset_id": dataset_id})

    def active(self, plan_sha256: str) -> Approval | None:
        """The plan's approval if it is approved and not withdrawn; the engine asks before every round."""
        with self.store.session() as session:
            row = self._active_row(session, plan_sha256)
            return None if row is None else _approval(row)

    def list(self, actor: UserSession) -> list[Approval]:
        """Every approval ever given (withdrawn ones included), newest first."""
        self.accounts.require(actor, Permission.APPROVE_TRAINING, "approvals")
        with self.store.session() as session:
            return [_approval(r) for r in session.scalars(select(ApprovalRow).order_by(ApprovalRow.id.desc()))]

    def reserved(self, dataset_id: int, *, excluding: str | None = None) -> float:
        """ε that active approvals (other than plan ``excluding``) may still spend on the dataset's images — each
        one's ε total less what it has spent, summed per image over the approvals whose dataset holds the image —
        as the amount it adds to the dataset's most-spent image: ``spent + reserved`` is the worst image's total."""
        held: dict[int, float] = {}
        spent_by_dataset: dict[int, dict[str, float]] = {}
        for approval in self._active():
            if approval.plan_sha256 == excluding or approval.epsilon_total is None:
                continue
            if not math.isfinite(approval.epsilon_total):
                continue
            spent = spent_by_dataset.setdefault(approval.dataset_id, self.ledger.spent_by_plan(approval.dataset_id))
            left = max(0.0, approval.epsilon_total - spent.get(approval.plan_sha256, 0.0))
            held[approval.dataset_id] = held.get(approval.dataset_id, 0.0) + left
        if not held:
            return 0.0
        return max(0.0, self.ledger.worst_image(dataset_id, held) - self.ledger.spent(dataset_id))

    def active_for_dataset(self, dataset_id: int) -> builtins.list[Approval]:  # ``list`` is the method above
        with self.store.session() as session:
            query = select(ApprovalRow).where(ApprovalRow.dataset_id == dataset_id, ApprovalRow.withdrawn_at.is_(None))
            return [_approval(r) for r in session.scalars(query)]

    def _active(self) -> builtins.list[Approval]:
        with self.store.session() as session:
            query = select(ApprovalRow).where(ApprovalRow.withdrawn_at.is_(None))
            return [_approval(r) for r in session.scalars(query)]

    @staticmethod
    def _active_row(session: Session, plan_sha256: str) -> ApprovalRow | None:
        query = (select(ApprovalRow).where(ApprovalRow.plan_sha256 == plan_sha256, ApprovalRow.withdrawn_at.is_(None))
                 .order_by(ApprovalRow.id.desc()))
        return session.scalars(query).first()
