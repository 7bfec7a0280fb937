"""The coordinator's service layer in-process: rounds, restart recovery, deadlines, plan checks, enrolment codes."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pytest
from sqlalchemy import update

from pneumodesk.coordinator.db import EnrolmentCode, Round
from pneumodesk.coordinator.errors import Conflict, Forbidden, InvalidInput
from pneumodesk.coordinator.rounds import RoundState, check_transition
from pneumodesk.coordinator.service import CoordinatorService
from pneumodesk.coordinator.setup import initialise
from pneumodesk.federation import PlanError, state_dict_from_bytes, state_dict_to_bytes

PASSWORD = "a long enough password"


@pytest.fixture
def service(tmp_path, tiny_bundle_dir):
    initialise(tmp_path / "c", hosts=[], port=0, operator="admin", password=PASSWORD, model=tiny_bundle_dir)
    service = CoordinatorService.open(tmp_path / "c")
    yield service
    service.close()


def _approved(service: CoordinatorService, count: int) -> list[str]:
    ids = []
    for i in range(count):
        code = service.create_enrolment_code().code
        node = service.enrol(code, f"h{i}", _key(i))
        ids.append(service.approve_node(node.node_id).node_id)
    return ids


def _key(i: int) -> str:
    import base64

    return base64.urlsafe_b64encode(bytes([i + 1]) * 32).rstrip(b"=").decode()


def _plan(service: CoordinatorService, **changes) -> str:
    base = service.list_models()[0]
    plan = {"name": "p", "architecture": "pneumonet-tiny", "input_size": 32, "base_model_sha256": base.sha256,
            "learning_rate": 0.1, "rounds": 2, "min_nodes": 2, "secure_aggregation": False, **changes}
    return service.publish_plan(json.dumps(plan)).plan_sha256


def _update(service: CoordinatorService, value: float) -> bytes:
    weights, _ = service.model_weights(1)
    return state_dict_to_bytes({k: np.full_like(v, value) for k, v in state_dict_from_bytes(weights).items()})


def test_state_machine_allows_only_forward_transitions():
    check_transition("open", RoundState.COLLECTING)
    check_transition("aggregating", RoundState.COMPLETE)
    for current, target in [("complete", RoundState.OPEN), ("failed", RoundState.COLLECTING),
                            ("collecting", RoundState.OPEN), ("open", RoundState.COMPLETE)]:
        with pytest.raises(Conflict):
            check_transition(current, target)


def test_a_round_left_aggregating_by_a_crash_is_aggregated_on_the_next_sweep(service):
    nodes = _approved(service, 3)
    sha = _plan(service, min_nodes=3)
    round_id = service.join(sha, nodes[0]).round_id
    for node, value in zip(nodes[:2], (1.0, 2.0), strict=True):
        service.submit_update(round_id, node, _update(service, value), 2, None)
    # Simulate a crash right after the transition to aggregating was committed (before the aggregate existed).
    with service.sessions() as session:
        session.execute(update(Round).where(Round.id == round_id).values(state="aggregating"))
        session.commit()
    restarted = CoordinatorService.open(service.paths.root)
    restarted.sweep()
    status = restarted.round_status(round_id)
    assert status.state == "complete" and status.result_version == 2
    weights, _ = restarted.model_weights(2)
    assert all(np.all(v == 1.5) for v in state_dict_from_bytes(weights).values())
    assert restarted.plan_state(sha).round.number == 2  # the plan's next round opened from the new model
    assert restarted.plan_state(sha).round.model_version == 2
    restarted.close()


def test_deadline_without_enough_updates_fails_the_round_and_opens_the_next(service):
    nodes = _approved(service, 1)
    sha = _plan(service)
    round_id = service.join(sha, nodes[0]).round_id
    service.submit_update(round_id, nodes[0], _update(service, 1.0), 2, None)
    with service.sessions() as session:
        past = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
        session.execute(update(Round).where(Round.id == round_id).values(deadline=past))
        session.commit()
    service.sweep()
    failed = service.round_status(round_id)
    assert failed.state == "failed" and "1 of 2" in failed.reason
    assert service.plan_state(sha).round.number == 2
    assert [p.name for p in service.paths.blobs.rglob("*") if p.is_file()] == [service.list_models()[0].sha256]


def test_plan_publication_checks(service):
    with pytest.raises(PlanError, match="secure aggregation"):
        _plan(service, secure_aggregation=True, min_nodes=1)
    with pytest.raises(PlanError, match="base_model_sha256"):
        _plan(service, base_model_sha256="0" * 64)
    with pytest.raises(PlanError, match="pneumonet-tiny at 32 px"):
        _plan(service, input_size=64)
    _plan(service)
    with pytest.raises(Conflict, match="already published"):
        _plan(service)


def test_enrolment_codes_are_single_use_expire_and_are_stored_hashed(service):
    code = service.create_enrolment_code()
    with service.sessions() as session:
        stored = session.query(EnrolmentCode).one()
    assert code.code not in stored.code_sha256
    service.enrol(code.code, "a", _key(1))
    with pytest.raises(Forbidden):
        service.enrol(code.code, "b", _key(2))
    expired = service.create_enrolment_code(hours=-1)
    with pytest.raises(Forbidden):
        service.enrol(expired.code, "c", _key(3))
    with pytest.raises(InvalidInput):
        service.enrol(service.create_enrolment_code().code, "d", "c2hvcnQ")


def test_weak_operator_passwords_are_refused(service):
    with pytest.raises(InvalidInput, match="12 characters"):
        service.create_operator("bob", "short", "viewer")
    assert service.login("admin", PASSWORD).access_token


def test_a_refused_second_update_leaves_no_blob_behind(service):
    nodes = _approved(service, 1)
    round_id = service.join(_plan(service), nodes[0]).round_id
    first = service.submit_update(round_id, nodes[0], _update(service, 1.0), 2, None)
    with pytest.raises(Conflict, match="only the first one counts"):
        service.submit_update(round_id, nodes[0], _update(service, 2.0), 2, None)
    stored = sorted(p.name for p in service.paths.blobs.rglob("*") if p.is_file())
    assert stored == sorted([service.list_models()[0].sha256, first.update_sha256])
