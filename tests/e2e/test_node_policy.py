"""End to end: the engine trains nothing and sends nothing for a plan outside the node policy, without an active
approval, or when the dataset's privacy budget has no room left."""

from __future__ import annotations

import pytest

from pneumodesk.client import EngineOptions, EngineStage
from pneumodesk.node import PlanOutsidePolicy

from .node_harness import Recorder, make_plan, ready_hospitals, shared_node_coordinator_fixture  # noqa: F401 - fixture

ONCE = EngineOptions(poll_timeout=5, max_rounds=1, candidates="none")


def _paths(events) -> list[str]:
    return [f"{e.method} {e.endpoint}" for e in events]


def test_a_plan_outside_policy_is_refused_at_approval_and_again_before_training(shared_node_coordinator, tmp_path):
    recorder = Recorder()
    ((hospital, dataset_id),) = ready_hospitals(shared_node_coordinator, tmp_path, 1, recorder=recorder)
    hospital.set_policy(min_nodes_per_round=1, require_secure_aggregation=True)
    plan = make_plan(shared_node_coordinator, rounds=1, min_nodes=1, name="outside policy")
    shared_node_coordinator.publish(plan)

    # The admin cannot approve it while the policy requires secure aggregation.
    with pytest.raises(PlanOutsidePolicy, match="secure aggregation"):
        hospital.approve_plan(plan, dataset_id)

    # Approved under a looser policy, then the policy is tightened: the engine refuses before training.
    hospital.set_policy(require_secure_aggregation=False)
    hospital.approve_plan(plan, dataset_id)
    hospital.set_policy(max_local_epochs=1, max_learning_rate=0.01)
    events: list = []
    result = hospital.engine(plan.sha256, options=ONCE, recorder=events.append).run()

    assert result.phase == EngineStage.REFUSED and result.reason == "outside_policy"
    assert "learning rate 0.05 is above the largest allowed" in result.message
    assert result.rounds_trained == 0 and hospital.service.ledger.entries(dataset_id) == []
    assert not any("/join" in p or "/update" in p or "/weights" in p for p in _paths(events))


def test_a_withdrawn_approval_stops_the_engine_before_it_joins(shared_node_coordinator, tmp_path):
    ((hospital, dataset_id),) = ready_hospitals(shared_node_coordinator, tmp_path, 1)
    plan = make_plan(shared_node_coordinator, rounds=1, min_nodes=1, name="withdrawn")
    shared_node_coordinator.publish(plan)
    hospital.approve_plan(plan, dataset_id)
    hospital.service.approvals.withdraw(hospital.owner, plan.sha256)
    events: list = []

    result = hospital.engine(plan.sha256, options=ONCE, recorder=events.append).run()

    assert result.phase == EngineStage.REFUSED and result.reason == "not_approved"
    assert not any("/join" in p for p in _paths(events))


def test_the_privacy_budget_cap_stops_training_before_it_starts(shared_node_coordinator, tmp_path):
    ((hospital, dataset_id),) = ready_hospitals(shared_node_coordinator, tmp_path, 1)
    hospital.set_policy(epsilon_cap_per_dataset=8.0)
    first = make_plan(shared_node_coordinator, rounds=1, min_nodes=1, target_epsilon=4.0, name="first")
    second = make_plan(shared_node_coordinator, rounds=1, min_nodes=1, target_epsilon=4.0, name="second")
    for plan in (first, second):
        shared_node_coordinator.publish(plan)
        hospital.approve_plan(plan, dataset_id)  # together they fit the cap of 8
    hospital.set_policy(epsilon_cap_per_dataset=6.0)  # the admin lowers the cap after approving both

    spent = hospital.engine(first.sha256, options=ONCE).run()
    assert spent.phase == EngineStage.FINISHED and spent.rounds_trained == 1
    assert 3.9 < hospital.service.ledger.spent(dataset_id) <= 4.0 + 1e-9
    events: list = []
    statuses: list = []
    refused = hospital.engine(second.sha256, options=ONCE, recorder=events.append, on_status=statuses.append).run()

    assert refused.phase == EngineStage.REFUSED and refused.reason == "budget"
    assert "budget" in refused.message.lower() or "ε" in refused.message
    assert EngineStage.TRAINING not in {s.phase for s in statuses}
    assert not any("/join" in p or "/update" in p for p in _paths(events))
    assert len(hospital.service.ledger.entries(dataset_id)) == 1
