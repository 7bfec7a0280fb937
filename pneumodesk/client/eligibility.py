"""Whether this node may train a round of a plan now: the checks the engine runs before every round, in order, and
the one value they produce (``ApprovedRound``) that everything after them uses.

Order: an approval for this exact plan hash is active → its plan text still hashes to that hash → it was approved
for the coordinator this node is enrolled with → the approved dataset still has training images → the node policy
still allows the plan (with its ε on this dataset) → the dataset's privacy ledger has room for one more round.
Each failure is a ``ParticipationRefused`` with its ``RefusalReason``; nothing is joined, downloaded or trained.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from pneumodesk.federation.plan import TrainingPlan
from pneumodesk.federation.vocabulary import RefusalReason

from .errors import ParticipationRefused

if TYPE_CHECKING:
    from pneumodesk.node import Approval, Membership, NodeService
    from pneumodesk.training.privacy import PrivacyCost


@dataclass(frozen=True)
class ApprovedRound:
    """One round's licence to train, fixed when the round's checks passed: the approval, its plan (parsed once,
    from the approved bytes), the dataset, the DP cost and the ε this round adds to the ledger (None without DP)."""

    approval: Approval
    plan: TrainingPlan
    examples: int  # training images in the approved dataset now
    cost: PrivacyCost | None
    rounds_done: int  # rounds of this plan already recorded on the dataset
    epsilon: float | None

    @property
    def dataset_id(self) -> int:
        return self.approval.dataset_id


def approved_plan(service: NodeService, plan_sha256: str) -> tuple[Approval, TrainingPlan] | None:
    """The active approval of ``plan_sha256`` and its plan, or None when there is none (withdrawn meanwhile).

    Raises ``ParticipationRefused`` (PLAN_CHANGED) when the approved text no longer hashes to ``plan_sha256``.
    """
    approval = service.approvals.active(plan_sha256)
    if approval is None:
        return None
    plan = TrainingPlan.from_json_bytes(approval.plan_json)
    if plan.sha256 != plan_sha256:
        raise ParticipationRefused("The approved plan text does not match the plan's hash; the plan needs a new "
                                   "approval.", RefusalReason.PLAN_CHANGED)
    return approval, plan


def _same_address(first: str, second: str) -> bool:
    from .transport import normalise_url

    try:
        return normalise_url(first) == normalise_url(second)
    except ValueError:
        return False


def approve_round(service: NodeService, plan_sha256: str, membership: Membership | None) -> ApprovedRound:
    """Run the checks of the module docstring; the ``ApprovedRound`` to train with, or ``ParticipationRefused``."""
    from pneumodesk.node import PrivacyBudgetExceeded, plan_violations
    from pneumodesk.training.privacy import ledger_increment, plan_privacy_cost

    approved = approved_plan(service, plan_sha256)
    if approved is None:
        raise ParticipationRefused("No admin has approved this plan on this node (or the approval was withdrawn); "
                                   "nothing was trained.", RefusalReason.NOT_APPROVED)
    approval, plan = approved
    if membership is not None and not _same_address(approval.coordinator_url, membership.coordinator_url):
        raise ParticipationRefused("The plan was approved for another coordinator than the one this node is "
                                   "enrolled with.", RefusalReason.NOT_APPROVED)
    examples = len(service.datasets.files(approval.dataset_id, "training"))
    if examples == 0:
        raise ParticipationRefused("The approved dataset has no training images left.", RefusalReason.NO_DATASET)
    cost = plan_privacy_cost(plan, examples)
    policy = service.policy.get()
    reasons = plan_violations(policy, plan, None if cost is None else cost.epsilon_total)
    if reasons:
        raise ParticipationRefused("The node policy no longer allows this plan: " + "; ".join(reasons) + ".",
                                   RefusalReason.OUTSIDE_POLICY)
    done = sum(1 for entry in service.ledger.entries(approval.dataset_id) if entry.plan_sha256 == plan_sha256)
    epsilon = None
    if cost is not None:
        if done >= plan.rounds:
            raise ParticipationRefused("This node has already trained every round this plan asked for.",
                                       RefusalReason.BUDGET)
        epsilon = ledger_increment(cost, done + 1)
        try:
            service.ledger.ensure_room(approval.dataset_id, epsilon, policy.epsilon_cap_per_dataset)
        except PrivacyBudgetExceeded as error:
            raise ParticipationRefused(str(error), RefusalReason.BUDGET) from None
    return ApprovedRound(approval, plan, examples, cost, done, epsilon)
