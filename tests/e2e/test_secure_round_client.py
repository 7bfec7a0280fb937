"""Secure aggregation with the real node client over real TLS: hospitals train, their participation engines run
the secure exchange (the default for a plan), and a coordinator that substitutes a round key is caught."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from pneumodesk.client import EngineOptions, EngineStage
from pneumodesk.client.local_federation import LocalCoordinator, run_engines
from pneumodesk.client.secure_upload import PURPOSE_MASKED
from pneumodesk.federation.messages import API_PREFIX
from pneumodesk.federation.tensors import state_dict_from_bytes
from pneumodesk.node import PlanOutsidePolicy

from .coordinator_harness import wait_until
from .node_harness import Recorder, hospital_data, make_plan, node_coordinator_fixture  # noqa: F401 - fixture


def _hospitals(coordinator, root: Path, count: int, recorder: Recorder | None = None):  # type: ignore[no-untyped-def]
    """Enrolled, approved hospitals with a dataset and the default policy (secure aggregation required)."""
    from pneumodesk.client.local_federation import LocalHospital

    out = []
    for i in range(count):
        hospital = LocalHospital.create(root / f"hospital-{i}", f"Hospital {i}")
        hospital.enrol(coordinator, recorder=recorder.for_hospital(hospital.name) if recorder else None)
        dataset = hospital.register_dataset(hospital_data(root, i))
        hospital.set_policy(require_dp=False)
        out.append((hospital, dataset.id))
    return out


def test_hospitals_run_a_secure_round_by_default_and_only_masked_updates_leave(node_coordinator, tmp_path):
    recorder = Recorder()
    hospitals = _hospitals(node_coordinator, tmp_path, 3, recorder)
    plain = make_plan(node_coordinator, rounds=1, min_nodes=3, dp=False, target_epsilon=None, name="plain")
    with pytest.raises(PlanOutsidePolicy, match="secure aggregation"):
        hospitals[0][0].approve_plan(plain, hospitals[0][1])  # the default policy requires it
    plan = make_plan(node_coordinator, rounds=1, min_nodes=3, dp=False, target_epsilon=None,
                     secure_aggregation=True, secure_phase_seconds=30)
    node_coordinator.publish(plan)
    for hospital, dataset_id in hospitals:
        hospital.approve_plan(plan, dataset_id)
    engines = [h.engine(plan.sha256, options=EngineOptions(poll_timeout=10, candidates="none", seed=1),
                        recorder=recorder.for_hospital(h.name)) for h, _ in hospitals]

    results = run_engines(engines, timeout=300)

    assert [r.phase for r in results] == [EngineStage.FINISHED] * 3, [r.message for r in results]
    models = node_coordinator.models()
    assert [m.version for m in models] == [1, 2] and models[-1].contributors == 3
    base, new = (state_dict_from_bytes(node_coordinator.weights(v)) for v in (1, 2))
    assert any(not np.array_equal(base[k], new[k]) for k in base)
    for hospital, _ in hospitals:
        events = recorder.events[hospital.name]
        endpoints = [e.endpoint for e in events if e.method in ("PUT", "POST")]
        assert not any(e.endswith("/update") and "/secure/" not in e for e in endpoints), "no plain update left"
        masked = [e for e in events if e.purpose == PURPOSE_MASKED]
        assert len(masked) == 1 and masked[0].endpoint.startswith(f"{API_PREFIX}/rounds/")
        # the masked bytes are not the weights: no float32 of the trained model appears in them
        assert b"safetensors" not in masked[0].body and b"__metadata__" not in masked[0].body
        assert not list((hospital.home / "federation" / "secagg").glob("*.enc")), "round state deleted at the end"


_EVIL_SERVE = """
import sys
from pneumodesk.coordinator import secure_rounds
from pneumodesk.federation.secagg import KeyAdvertisement

genuine = secure_rounds.SecureRounds.roster

def substituted(self, round_id, node_id):
    answer = genuine(self, round_id, node_id)
    ads = list(answer.roster.advertisements)
    victim = ads[-1]
    ads[-1] = KeyAdvertisement(round_id=victim.round_id, node_id=victim.node_id, mask_public=bytes(32 * [7]),
                               share_public=victim.share_public, signature=victim.signature)
    roster = answer.roster.model_copy(update={"advertisements": tuple(ads)})
    return answer.model_copy(update={"roster": roster})

secure_rounds.SecureRounds.roster = substituted
from pneumodesk.coordinator.cli import main
sys.exit(main(sys.argv[1:]))
"""


class _SubstitutingCoordinator(LocalCoordinator):
    """A real coordinator over TLS whose roster swaps one node's mask key (keeping that node's signature)."""

    def start(self, timeout: float = 90.0) -> LocalCoordinator:
        original = subprocess.Popen

        def popen(args, *rest, **kwargs):  # type: ignore[no-untyped-def]
            if args[:3] == [sys.executable, "-m", "pneumodesk.coordinator.cli"]:
                args = [sys.executable, "-c", _EVIL_SERVE, *args[3:]]
            return original(args, *rest, **kwargs)

        subprocess.Popen = popen  # type: ignore[misc]
        try:
            return super().start(timeout)
        finally:
            subprocess.Popen = original  # type: ignore[misc]


def test_a_substituted_round_key_is_detected_by_the_nodes(tmp_path, tiny_bundle_dir):
    created = LocalCoordinator.create(tmp_path / "coordinator", tiny_bundle_dir)
    coordinator = _SubstitutingCoordinator(created.directory, created.password).start()
    try:
        hospitals = _hospitals(coordinator, tmp_path, 3)
        plan = make_plan(coordinator, rounds=1, min_nodes=3, dp=False, target_epsilon=None,
                         secure_aggregation=True, secure_phase_seconds=3)
        coordinator.publish(plan)
        for hospital, dataset_id in hospitals:
            hospital.approve_plan(plan, dataset_id)
        engines = [h.engine(plan.sha256, options=EngineOptions(poll_timeout=5, candidates="none", max_rounds=1))
                   for h, _ in hospitals]
        results = run_engines(engines, timeout=300)
        refused = [r for r in results if r.phase == EngineStage.REFUSED]
        assert len(refused) >= 2, [r.message for r in results]
        assert all(r.reason == "secure_aggregation" and "substituted" in r.message for r in refused)
        assert [m.version for m in coordinator.models()] == [1]  # nothing was aggregated
        failed = wait_until(lambda: [r for r in coordinator.rounds() if r.state == "failed"], 30,
                            what="the round to fail at the share_keys deadline")
        assert "shared their keys" in failed[0].reason
    finally:
        coordinator.stop()


OPTIONS = EngineOptions(poll_timeout=5, candidates="none", seed=3)


def _three_hospitals_on_a_secure_plan(coordinator, root: Path, recorder: Recorder | None = None,
                                      phase_seconds: int = 60):  # type: ignore[no-untyped-def]
    """Three hospitals, each with an approved one-round secure plan that needs all three."""
    hospitals = _hospitals(coordinator, root, 3, recorder)
    plan = make_plan(coordinator, rounds=1, min_nodes=3, dp=False, target_epsilon=None, secure_aggregation=True,
                     secure_phase_seconds=phase_seconds)
    coordinator.publish(plan)
    for hospital, dataset_id in hospitals:
        hospital.approve_plan(plan, dataset_id)
    return [hospital for hospital, _ in hospitals], plan


def _engine(hospital, plan, recorder: Recorder | None = None, **uploader_options):  # type: ignore[no-untyped-def]
    """The hospital's engine with a secure uploader built with ``uploader_options`` (``stop_after``, ``on_phase``)."""
    from pneumodesk.client.enrolment import connect
    from pneumodesk.client.participation import ParticipationEngine
    from pneumodesk.client.secure_upload import secure_uploader

    connection = connect(hospital.service, hospital.key_store,
                         recorder=recorder.for_hospital(hospital.name) if recorder else None)
    return ParticipationEngine(hospital.service, plan.sha256, home=hospital.home, options=OPTIONS,
                               connection=connection,
                               uploader=secure_uploader(hospital.home, connection, poll_timeout=5, **uploader_options))


def _start(engines: list) -> tuple[list[threading.Thread], list]:  # type: ignore[type-arg]
    """Run each engine in a thread; their results land in the returned list."""
    results: list = []
    threads = [threading.Thread(target=lambda e=e: results.append(e.run())) for e in engines]
    for thread in threads:
        thread.start()
    return threads, results


def test_a_node_that_stops_mid_round_resumes_from_its_saved_state(node_coordinator, tmp_path):
    from pneumodesk.client.secure_upload import PURPOSE_KEYS, PURPOSE_SHARES

    recorder = Recorder()
    hospitals, plan = _three_hospitals_on_a_secure_plan(node_coordinator, tmp_path, recorder)
    threads, results = _start([h.engine(plan.sha256, options=OPTIONS, recorder=recorder.for_hospital(h.name))
                               for h in hospitals[:2]])
    last = hospitals[2]
    first = _engine(last, plan, recorder, stop_after="share_keys").run()
    assert first.phase == EngineStage.STOPPED, first.message
    assert list((last.home / "federation" / "secagg").glob("*.enc")), "its round state is saved (encrypted)"
    second = last.engine(plan.sha256, options=OPTIONS, recorder=recorder.for_hospital(last.name)).run()
    for thread in threads:
        thread.join(300)

    assert second.phase == EngineStage.FINISHED, second.message
    assert [r.phase for r in results] == [EngineStage.FINISHED] * 2, [r.message for r in results]
    assert node_coordinator.models()[-1].contributors == 3  # nothing was lost by the restart
    purposes = [e.purpose for e in recorder.events[last.name]]
    assert purposes.count(PURPOSE_KEYS) == 1 and purposes.count(PURPOSE_SHARES) == 1  # not sent twice
    assert second.rounds_trained == 0  # it did not train again: the saved update was masked


def test_a_node_away_after_its_masked_input_has_the_completed_round_counted(node_coordinator, tmp_path):
    from pneumodesk.client.state import StateStore

    hospitals, plan = _three_hospitals_on_a_secure_plan(node_coordinator, tmp_path)
    threads, results = _start([h.engine(plan.sha256, options=OPTIONS) for h in hospitals[:2]])
    last = hospitals[2]
    assert _engine(last, plan, stop_after="masked_input").run().phase == EngineStage.STOPPED
    for thread in threads:  # the other two unmask without it: the round completes while it is away
        thread.join(300)
    assert [r.phase for r in results] == [EngineStage.FINISHED] * 2, [r.message for r in results]
    assert node_coordinator.models()[-1].contributors == 3

    back = last.engine(plan.sha256, options=OPTIONS).run()

    assert back.phase == EngineStage.FINISHED, back.message
    (record,) = StateStore(last.home, plan.sha256).load().rounds.values()
    assert record.stage == "settled" and record.result_version == node_coordinator.models()[-1].version
    assert not list((last.home / "federation" / "secagg").glob("*.enc")), "the finished round's secrets are gone"


def test_a_node_back_before_unmasking_sends_its_shares_without_masking_again(node_coordinator, tmp_path):
    from pneumodesk.client.secure_upload import PURPOSE_CONFIRM, PURPOSE_UNMASK
    from pneumodesk.client.state import StateStore

    recorder = Recorder()
    hospitals, plan = _three_hospitals_on_a_secure_plan(node_coordinator, tmp_path, recorder, phase_seconds=120)
    returned = threading.Event()

    def hold_after_masking(step: str) -> None:  # the other two wait to unmask until the third node is back
        if step == "sent masked_input":
            assert returned.wait(300)

    threads, results = _start([_engine(h, plan, recorder, on_phase=hold_after_masking) for h in hospitals[:2]])
    last = hospitals[2]
    assert _engine(last, plan, recorder, stop_after="masked_input").run().phase == EngineStage.STOPPED
    wait_until(lambda: node_coordinator.rounds()[0].phase == "consistency_check", 120, what="every masked input in")
    back = threading.Thread(target=lambda: results.append(
        last.engine(plan.sha256, options=OPTIONS, recorder=recorder.for_hospital(last.name)).run()))
    back.start()
    wait_until(lambda: PURPOSE_CONFIRM in [e.purpose for e in recorder.events[last.name]], 120,
               what="the returning node's signature on the survivors")
    returned.set()
    for thread in (*threads, back):
        thread.join(300)

    assert [r.phase for r in results] == [EngineStage.FINISHED] * 3, [r.message for r in results]
    assert node_coordinator.models()[-1].contributors == 3
    purposes = [e.purpose for e in recorder.events[last.name]]
    assert purposes.count(PURPOSE_MASKED) == 1 and purposes.count(PURPOSE_CONFIRM) == 1
    assert purposes.count(PURPOSE_UNMASK) == 1
    (record,) = StateStore(last.home, plan.sha256).load().rounds.values()
    assert record.stage == "settled"


def test_a_refused_secure_round_is_missed_for_good_and_never_masked_again_under_fresh_keys(node_coordinator,
                                                                                           tmp_path):
    import base64
    import json
    import os

    from pneumodesk.client.errors import Refused
    from pneumodesk.client.secure_upload import PURPOSE_KEYS
    from pneumodesk.client.state import StateStore
    from pneumodesk.client.upload import PreparedUpdate

    recorder = Recorder()
    hospitals, plan = _three_hospitals_on_a_secure_plan(node_coordinator, tmp_path, recorder, phase_seconds=30)
    victim, peer = hospitals[2], hospitals[0]
    # The victim once saw another identity key for a peer: the roster looks like a key substitution, so it refuses.
    pinned = {peer.service.membership.get().node_id: base64.b64encode(os.urandom(32)).decode()}
    (victim.home / "federation" / "peer-identity-keys.json").write_text(json.dumps(pinned))
    others = [h.engine(plan.sha256, options=OPTIONS, recorder=recorder.for_hospital(h.name)) for h in hospitals[:2]]
    threads, _ = _start(others)
    try:
        refused = victim.engine(plan.sha256, options=OPTIONS, recorder=recorder.for_hospital(victim.name)).run()
    finally:
        for engine in others:
            engine.stop()
        for thread in threads:
            thread.join(300)

    assert refused.phase == EngineStage.REFUSED and refused.reason == "secure_aggregation", refused.message
    (record,) = StateStore(victim.home, plan.sha256).load().rounds.values()
    assert record.stage == "missed", "a refused round must not stay 'trained' (a later run would deliver it again)"
    assert not list((victim.home / "federation" / "participation").rglob("round-*.safetensors"))

    # Even asked to deliver that round again (its bookkeeping lost), the node does not begin it under fresh keys.
    from pneumodesk.client.enrolment import connect
    from pneumodesk.client.secure_upload import secure_uploader

    connection = connect(victim.service, victim.key_store, recorder=recorder.for_hospital(victim.name))
    try:
        info = connection.client.round(record.round_id)
        update = PreparedUpdate(b"", "0" * 64, 1, arrays=dict)
        with pytest.raises(Refused) as caught:
            secure_uploader(victim.home, connection, poll_timeout=5).deliver(connection.client, info, update,
                                                                             lambda: False)
        assert caught.value.status == 409 and "fresh keys" in str(caught.value)
    finally:
        connection.close()
    assert [e.purpose for e in recorder.events[victim.name]].count(PURPOSE_KEYS) == 1, "round keys sent twice"
