"""End to end: a coordinator that dies mid-round gives a clear status and the round completes once it is back; a
node stopped between training and upload resumes with the same update (no second training, no second ε)."""

from __future__ import annotations

import threading
import time

from pneumodesk.client import EngineOptions, EngineStage
from pneumodesk.client.local_federation import run_engines

from .node_harness import make_plan, node_coordinator_fixture, ready_hospitals  # noqa: F401 - fixture

FAST_RETRY = EngineOptions(poll_timeout=5, candidates="none", retry_delays=(0.5, 1.0))


class Watch:
    """Status events of several engines, with a way to wait for a condition on them (no sleeps)."""

    def __init__(self) -> None:
        self.events: list[tuple[str, object]] = []
        self.changed = threading.Condition()

    def for_hospital(self, name: str):  # type: ignore[no-untyped-def]
        def record(status) -> None:  # type: ignore[no-untyped-def]
            with self.changed:
                self.events.append((name, status))
                self.changed.notify_all()
        return record

    def wait_for(self, predicate, timeout: float = 120) -> None:  # type: ignore[no-untyped-def]
        with self.changed:
            assert self.changed.wait_for(lambda: predicate(self.events), timeout), "timed out waiting for engines"


def _phases(events, name: str) -> list:  # type: ignore[no-untyped-def]
    return [status for who, status in events if who == name]


def test_the_coordinator_killed_mid_round_comes_back_and_the_round_completes(node_coordinator, tmp_path):
    hospitals = ready_hospitals(node_coordinator, tmp_path, 3)
    plan = make_plan(node_coordinator, rounds=1, min_nodes=3, dp=False, target_epsilon=None)
    node_coordinator.publish(plan)
    for hospital, dataset_id in hospitals:
        hospital.set_policy(require_dp=False)
        hospital.approve_plan(plan, dataset_id)
    watch = Watch()
    engines = [h.engine(plan.sha256, options=FAST_RETRY, on_status=watch.for_hospital(h.name)) for h, _ in hospitals]
    first_two, last = engines[:2], engines[2]
    results: list = []
    runner = threading.Thread(target=lambda: results.extend(run_engines(first_two, timeout=300)))
    runner.start()

    # Two hospitals have sent their updates; the round waits for the third. Then the coordinator dies (SIGKILL).
    watch.wait_for(lambda ev: all(any(s.phase == EngineStage.SUBMITTED for s in _phases(ev, h.name))
                                  for h, _ in hospitals[:2]))
    node_coordinator.stop(crash=True)
    watch.wait_for(lambda ev: all(any(s.phase == EngineStage.UNREACHABLE for s in _phases(ev, h.name))
                                  for h, _ in hospitals[:2]))
    unreachable = next(s for _, s in watch.events if s.phase == EngineStage.UNREACHABLE)
    assert unreachable.message.startswith("Coordinator unreachable, retrying in ") and unreachable.retry_in > 0

    # It comes back on the same address; the third hospital joins and the round completes for everyone.
    node_coordinator.start()
    final = last.run()
    runner.join(300)

    assert final.phase == EngineStage.FINISHED and [r.phase for r in results] == [EngineStage.FINISHED] * 2
    (round_info,) = node_coordinator.rounds()
    assert round_info.state == "complete" and round_info.updates_received == 3
    assert node_coordinator.models()[-1].contributors == 3


def test_a_node_stopped_between_training_and_upload_resumes_with_the_same_update(node_coordinator, tmp_path):
    ((hospital, dataset_id),) = ready_hospitals(node_coordinator, tmp_path, 1)
    plan = make_plan(node_coordinator, rounds=1, min_nodes=1)
    node_coordinator.publish(plan)
    hospital.approve_plan(plan, dataset_id)
    first_events: list = []
    engine = hospital.engine(plan.sha256, options=FAST_RETRY, recorder=first_events.append)
    engine.on_status = lambda s: engine.stop() if s.phase == EngineStage.TRAINING and s.progress == 1.0 else None

    stopped = engine.run()

    assert stopped.phase == EngineStage.STOPPED and stopped.rounds_trained == 1
    assert not any(e.endpoint.endswith("/update") for e in first_events)
    assert len(hospital.service.ledger.entries(dataset_id)) == 1  # ε is recorded before anything leaves
    pending = list((hospital.home / "federation" / "participation").rglob("round-*.safetensors"))
    assert len(pending) == 1
    kept = pending[0].read_bytes()

    statuses: list = []
    second_events: list = []
    resumed = hospital.engine(plan.sha256, options=FAST_RETRY, recorder=second_events.append,
                              on_status=statuses.append).run()

    assert resumed.phase == EngineStage.FINISHED and resumed.rounds_trained == 0
    assert EngineStage.TRAINING not in {s.phase for s in statuses}
    (upload,) = [e for e in second_events if e.endpoint.endswith("/update")]
    assert upload.body == kept
    assert len(hospital.service.ledger.entries(dataset_id)) == 1
    assert node_coordinator.rounds()[0].state == "complete"
    assert not list((hospital.home / "federation" / "participation").rglob("round-*.safetensors"))


def test_an_unreachable_coordinator_gives_a_clear_status_until_stopped(node_coordinator, tmp_path):
    ((hospital, dataset_id),) = ready_hospitals(node_coordinator, tmp_path, 1)
    plan = make_plan(node_coordinator, rounds=1, min_nodes=1)
    node_coordinator.publish(plan)
    hospital.approve_plan(plan, dataset_id)
    node_coordinator.stop()
    statuses: list = []
    engine = hospital.engine(plan.sha256, options=FAST_RETRY, on_status=statuses.append)

    def stop_after_two_retries(status) -> None:  # type: ignore[no-untyped-def]
        statuses.append(status)
        if sum(s.phase == EngineStage.UNREACHABLE for s in statuses) >= 2:
            engine.stop()

    engine.on_status = stop_after_two_retries
    result = engine.run()

    assert result.phase == EngineStage.STOPPED
    retries = [s for s in statuses if s.phase == EngineStage.UNREACHABLE]
    assert [s.retry_in for s in retries] == [0.5, 1.0]
    assert "cannot be reached" in retries[0].message and node_coordinator.url in retries[0].message
    assert hospital.service.ledger.entries(dataset_id) == []


def test_stopping_ends_a_long_poll_at_once_and_the_interrupted_request_is_logged(node_coordinator, tmp_path):
    ((hospital, dataset_id),) = ready_hospitals(node_coordinator, tmp_path, 1)
    plan = make_plan(node_coordinator, rounds=1, min_nodes=2)  # alone, this node waits for the others
    node_coordinator.publish(plan)
    hospital.approve_plan(plan, dataset_id)
    sent: list = []
    watch = Watch()
    engine = hospital.engine(plan.sha256, options=EngineOptions(poll_timeout=60, candidates="none"),
                             on_status=watch.for_hospital("h"), recorder=sent.append)
    results: list = []
    runner = threading.Thread(target=lambda: results.append(engine.run()))
    runner.start()

    def waiting_after_upload(events) -> bool:  # type: ignore[no-untyped-def]
        phases = [s.phase for s in _phases(events, "h")]
        return (EngineStage.SUBMITTED in phases and phases[-1] == EngineStage.WAITING
                and phases.count(EngineStage.WAITING) >= 3)

    watch.wait_for(waiting_after_upload)
    threading.Event().wait(1.0)  # let the long poll reach the coordinator (it would last 60 s)
    asked = time.monotonic()
    engine.stop()
    runner.join(timeout=30)

    assert not runner.is_alive() and time.monotonic() - asked < 10
    assert results[0].phase == EngineStage.STOPPED
    last = sent[-1]
    assert last.endpoint.endswith("/wait") and last.status is None  # recorded although it got no answer
    assert node_coordinator.rounds()[0].updates_received == 1  # the update stays counted
