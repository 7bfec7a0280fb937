"""Node policy, plan approval by hash and the privacy ledger: refusals before anything is recorded, withdrawal,
a changed plan needing a new approval, the ledger's append-only rows and budget cap, permissions and audit."""

from __future__ import annotations

import sqlite3

import pytest

from pneumodesk.federation.plan import DifferentialPrivacy, TrainingPlan
from pneumodesk.node import (
    ApprovalError,
    NodePolicy,
    NodeService,
    PermissionDenied,
    PlanOutsidePolicy,
    PolicyError,
    PrivacyBudgetExceeded,
    plan_violations,
)
from tests.builders import write_labelled_folder
from tests.node_builders import CLINICIAN, OWNER, seed_node, sign_in

COORDINATOR = "https://127.0.0.1:8443"


def make_plan(**changes) -> TrainingPlan:
    fields = {"name": "pneumonia round 1", "architecture": "pneumonet-tiny", "input_size": 64,
              "base_model_sha256": "a" * 64, "learning_rate": 0.1, "batch_size": 16, "local_epochs": 1,
              "rounds": 10, "min_nodes": 3, "secure_aggregation": True}
    return TrainingPlan(**{**fields, **changes})


@pytest.fixture
def node(tmp_path):
    seed_node(tmp_path / "home")
    service = NodeService.open(tmp_path / "home")
    yield service
    service.close()


@pytest.fixture
def owner(tmp_path, node):
    return sign_in(tmp_path / "home", OWNER[0], OWNER[2])


@pytest.fixture
def dataset_id(tmp_path, node, owner):
    import numpy as np

    root = write_labelled_folder(tmp_path / "data", per_class=10, rng=np.random.default_rng(3))
    return node.datasets.register(owner, "ward", root).id


def test_a_plan_within_the_default_policy_has_no_violations():
    assert plan_violations(NodePolicy(), make_plan(), epsilon_total=4.0) == []


def test_every_broken_rule_is_listed_in_plain_words():
    plan = make_plan(architecture="pneumonet-m", secure_aggregation=False, local_epochs=9, rounds=500,
                     learning_rate=5.0, batch_size=4, min_nodes=1, dp=DifferentialPrivacy(target_delta=1e-3))
    policy = NodePolicy(allowed_architectures=("pneumonet-tiny",))

    reasons = plan_violations(policy, plan, epsilon_total=25.0)

    expected = ["'pneumonet-m' is not allowed", "secure aggregation", "δ of 0.001", "ε = 25.00", "9 local epochs",
                "500 rounds", "learning rate 5", "batch size 4", "only 1 hospital"]
    assert len(reasons) == len(expected)
    for reason, fragment in zip(reasons, expected, strict=True):
        assert fragment in reason
    no_dp = plan_violations(NodePolicy(), make_plan(dp=DifferentialPrivacy(enabled=False)), None)
    assert no_dp == ["the plan trains without differential privacy, which this node requires"]
    assert plan_violations(NodePolicy(require_dp=False), make_plan(dp=DifferentialPrivacy(enabled=False)), None) == []
    assert "could not be worked out" in plan_violations(NodePolicy(), make_plan(), None)[0]


def test_policy_is_stored_audited_validated_and_needs_approve_training(tmp_path, node, owner):
    clinician = sign_in(tmp_path / "home", CLINICIAN[0], CLINICIAN[2])
    assert node.policy.get() == NodePolicy()

    saved = node.policy.set(owner, NodePolicy().with_settings(epsilon_cap_per_dataset="4", require_dp="no",
                                                             allowed_architectures="pneumonet-tiny,pneumonet-s"))
    with pytest.raises(PermissionDenied, match="approve training"):
        node.policy.set(clinician, NodePolicy())
    with pytest.raises(PolicyError, match="smallest batch size is larger"):
        node.policy.set(owner, NodePolicy(min_batch_size=64, max_batch_size=8))
    with pytest.raises(PolicyError, match="unknown setting 'colour'"):
        NodePolicy().with_settings(colour="blue")
    with pytest.raises(PolicyError, match="max_rounds cannot be"):
        NodePolicy().with_settings(max_rounds="lots")

    node.close()
    reopened = NodeService.open(tmp_path / "home")
    assert reopened.policy.get() == saved
    assert saved.epsilon_cap_per_dataset == 4.0 and saved.require_dp is False
    assert saved.allowed_architectures == ("pneumonet-s", "pneumonet-tiny")
    entry = reopened.audit.read(action="policy_changed")[0]
    assert entry.user == OWNER[0] and entry.details == {
        "allowed_architectures": "pneumonet-s,pneumonet-tiny", "epsilon_cap_per_dataset": 4.0, "require_dp": False}
    assert NodePolicy.from_json_dict(saved.to_json_dict()) == saved
    reopened.close()


def test_approval_by_hash_withdrawal_and_a_changed_plan_needing_a_new_approval(tmp_path, node, owner, dataset_id):
    plan = make_plan()
    approval = node.approvals.approve(owner, plan, dataset_id, COORDINATOR, epsilon_total=4.0)

    assert approval.plan_sha256 == plan.sha256 and approval.plan == plan and approval.withdrawn_at is None
    assert node.approvals.active(plan.sha256) == approval
    changed = make_plan(learning_rate=0.2)
    assert changed.sha256 != plan.sha256 and node.approvals.active(changed.sha256) is None
    with pytest.raises(ApprovalError, match="already approved"):
        node.approvals.approve(owner, plan, dataset_id, COORDINATOR, epsilon_total=4.0)

    node.approvals.withdraw(owner, plan.sha256)

    assert node.approvals.active(plan.sha256) is None
    with pytest.raises(ApprovalError, match="no active approval"):
        node.approvals.withdraw(owner, plan.sha256)
    listed = node.approvals.list(owner)
    assert [a.plan_sha256 for a in listed] == [plan.sha256] and listed[0].withdrawn_at is not None
    again = node.approvals.approve(owner, plan, dataset_id, COORDINATOR, epsilon_total=4.0)
    assert node.approvals.active(plan.sha256) == again
    audited = [(r.action, r.target) for r in node.audit.read() if r.action.startswith("plan_")]
    assert audited == [("plan_approved", plan.sha256), ("plan_withdrawn", plan.sha256),
                       ("plan_approved", plan.sha256)]


def test_approval_refusals_happen_before_anything_is_recorded(tmp_path, node, owner, dataset_id):
    clinician = sign_in(tmp_path / "home", CLINICIAN[0], CLINICIAN[2])
    outside = make_plan(secure_aggregation=False)

    with pytest.raises(PlanOutsidePolicy) as refused:
        node.approvals.approve(owner, outside, dataset_id, COORDINATOR, epsilon_total=4.0)
    with pytest.raises(PermissionDenied):
        node.approvals.approve(clinician, make_plan(), dataset_id, COORDINATOR, epsilon_total=4.0)
    node.ledger.record(dataset_id, "b" * 64, 1, epsilon=7.5, delta=1e-5, noise_multiplier=1.1, sample_rate=0.1,
                       steps=20)
    with pytest.raises(PrivacyBudgetExceeded, match=r"already spent ε = 7\.50 of its privacy budget of ε = 10\.00"):
        node.approvals.approve(owner, make_plan(), dataset_id, COORDINATOR, epsilon_total=4.0)

    assert refused.value.reasons == ["the plan does not use secure aggregation, which this node requires"]
    assert "outside the node's policy" in str(refused.value)
    assert node.approvals.list(owner) == []
    outcomes = [(r.action, r.outcome) for r in node.audit.read()]
    assert outcomes.count(("plan_refused", "denied")) == 2 and ("approve_training", "denied") in outcomes
    assert node.approvals.approve(owner, make_plan(), dataset_id, COORDINATOR, epsilon_total=2.5)


def test_a_dataset_in_use_by_an_approval_cannot_be_removed(node, owner, dataset_id):
    from pneumodesk.node import RegisteredDatasetError

    node.approvals.approve(owner, make_plan(), dataset_id, COORDINATOR, epsilon_total=1.0)
    with pytest.raises(RegisteredDatasetError, match="withdraw that approval first"):
        node.datasets.remove(owner, dataset_id)


def test_the_ledger_sums_entries_per_dataset_enforces_the_cap_and_is_append_only(tmp_path, node, dataset_id):
    for round_number, epsilon in ((1, 2.0), (2, 2.5)):
        node.ledger.record(dataset_id, "c" * 64, round_number, epsilon=epsilon, delta=1e-5, noise_multiplier=1.0,
                           sample_rate=0.05, steps=40)

    assert node.ledger.spent(dataset_id) == pytest.approx(4.5) and node.ledger.spent(dataset_id + 1) == 0.0
    assert [(e.round_number, e.epsilon, e.steps) for e in node.ledger.entries(dataset_id)] == [(1, 2.0, 40),
                                                                                              (2, 2.5, 40)]
    node.ledger.ensure_room(dataset_id, 5.5, cap=10.0)  # exactly at the cap is allowed
    with pytest.raises(PrivacyBudgetExceeded) as exceeded:
        node.ledger.ensure_room(dataset_id, 5.6, cap=10.0)
    assert exceeded.value.spent == pytest.approx(4.5) and "would exceed it" in str(exceeded.value)
    spent = node.audit.read(action="privacy_spent")
    assert [(r.user, r.details["round"]) for r in spent] == [("node", 2), ("node", 1)]

    with sqlite3.connect(tmp_path / "home" / "node.sqlite3") as db:
        for statement in ("update privacy_ledger set epsilon = 0", "delete from privacy_ledger"):
            with pytest.raises(sqlite3.IntegrityError, match="append-only"):
                db.execute(statement)
    assert node.ledger.spent(dataset_id) == pytest.approx(4.5)


def test_approved_plans_reserve_their_epsilon_so_together_they_fit_the_cap(node, owner, dataset_id):
    first = node.approvals.approve(owner, make_plan(name="first"), dataset_id, COORDINATOR, epsilon_total=6.0)
    assert node.approvals.reserved(dataset_id) == pytest.approx(6.0)

    with pytest.raises(PrivacyBudgetExceeded, match=r"other approved plans may still spend ε = 6\.00") as refused:
        node.approvals.approve(owner, make_plan(name="second"), dataset_id, COORDINATOR, epsilon_total=5.0)
    assert refused.value.reserved == pytest.approx(6.0) and refused.value.spent == 0.0

    # What the first plan spends moves from its reservation to the ledger: the room left stays the same.
    node.ledger.record(dataset_id, first.plan_sha256, 1, epsilon=2.0, delta=1e-5, noise_multiplier=1.0,
                       sample_rate=0.05, steps=40)
    assert node.approvals.reserved(dataset_id) == pytest.approx(4.0)
    with pytest.raises(PrivacyBudgetExceeded):
        node.approvals.approve(owner, make_plan(name="second"), dataset_id, COORDINATOR, epsilon_total=4.5)
    assert node.approvals.approve(owner, make_plan(name="second"), dataset_id, COORDINATOR, epsilon_total=4.0)

    # Withdrawing frees what the plan had not yet spent; its spending stays counted.
    node.approvals.withdraw(owner, first.plan_sha256)
    assert node.approvals.reserved(dataset_id) == pytest.approx(4.0)
    assert node.approvals.approve(owner, make_plan(name="third"), dataset_id, COORDINATOR, epsilon_total=4.0)
    with pytest.raises(PrivacyBudgetExceeded):
        node.approvals.approve(owner, make_plan(name="fourth"), dataset_id, COORDINATOR, epsilon_total=0.1)
