"""End to end: a trained update leaves only on the terms it was trained for. A node stopped between training and
upload re-checks, on its return, the approval and the policy before anything is sent: an update whose approval was
withdrawn is dropped (never sent), and an update the policy now wants aggregated securely is never sent in the clear
— whatever phase the coordinator announces for the round."""

from __future__ import annotations

from pneumodesk.client import EngineOptions, EngineStage
from pneumodesk.client.state import StateStore
from pneumodesk.federation.vocabulary import RefusalReason

from .node_harness import make_plan, node_coordinator_fixture, ready_hospitals  # noqa: F401 - fixture

FAST = EngineOptions(poll_timeout=5, candidates="none", retry_delays=(0.5, 1.0))


def _trained_then_stopped(coordinator, root):  # type: ignore[no-untyped-def]
    """One hospital on a plain one-round plan, stopped after training with its update saved (ε spent)."""
    ((hospital, dataset_id),) = ready_hospitals(coordinator, root, 1)
    plan = make_plan(coordinator, rounds=1, min_nodes=1, dp=False, target_epsilon=None)
    coordinator.publish(plan)
    hospital.set_policy(require_dp=False)
    hospital.approve_plan(plan, dataset_id)
    engine = hospital.engine(plan.sha256, options=FAST)
    engine.on_status = lambda s: engine.stop() if s.phase == EngineStage.TRAINING and s.progress == 1.0 else None
    assert engine.run().phase == EngineStage.STOPPED
    (record,) = StateStore(hospital.home, plan.sha256).load().rounds.values()
    assert record.stage == "trained" and record.secure is False  # recorded at training time
    return hospital, plan


def _updates_sent(events) -> list:  # type: ignore[no-untyped-def]
    return [e for e in events if e.method == "PUT" and e.endpoint.endswith("/update")]


def test_an_update_whose_approval_was_withdrawn_is_dropped_not_sent(node_coordinator, tmp_path):
    hospital, plan = _trained_then_stopped(node_coordinator, tmp_path)
    hospital.service.approvals.withdraw(hospital.owner, plan.sha256)
    events: list = []

    result = hospital.engine(plan.sha256, options=FAST, recorder=events.append).run()

    assert result.phase == EngineStage.REFUSED and result.reason == RefusalReason.NOT_APPROVED, result.message
    assert not _updates_sent(events), "an update without an approval left the node"
    (record,) = StateStore(hospital.home, plan.sha256).load().rounds.values()
    assert record.stage == "missed"
    assert not list((hospital.home / "federation" / "participation").rglob("round-*.safetensors")), "dropped"
    assert node_coordinator.rounds()[0].updates_received == 0


def test_an_update_is_not_sent_in_the_clear_once_the_policy_requires_secure_aggregation(node_coordinator,
                                                                                         tmp_path):
    hospital, plan = _trained_then_stopped(node_coordinator, tmp_path)
    hospital.set_policy(require_secure_aggregation=True)  # the coordinator still runs the round in the clear
    events: list = []

    result = hospital.engine(plan.sha256, options=FAST, recorder=events.append).run()

    assert result.phase == EngineStage.REFUSED and result.reason == RefusalReason.OUTSIDE_POLICY, result.message
    assert "secure aggregation" in result.message
    assert not _updates_sent(events), "raw weights left although the policy requires secure aggregation"
    (record,) = StateStore(hospital.home, plan.sha256).load().rounds.values()
    assert record.stage == "missed"
    assert node_coordinator.rounds()[0].updates_received == 0
