"""Uploads are checked before their body is read: round, phase, roster, a size from the round's model, and one
upload per node at a time (issue 13, finding 9). The real route guard on a real service, without HTTP."""

from __future__ import annotations

import asyncio
import base64
import json

import pytest
from starlette.requests import Request

from pneumodesk.coordinator.errors import Conflict, Forbidden, NotFound, TooLarge
from pneumodesk.coordinator.routes.context import ApiContext, checked_upload
from pneumodesk.coordinator.service import CoordinatorService
from pneumodesk.coordinator.setup import initialise
from pneumodesk.federation.vocabulary import RoundPhase


@pytest.fixture
def setup(tmp_path, tiny_bundle_dir):
    initialise(tmp_path / "c", hosts=[], port=0, operator="admin", password="a long enough password",
               model=tiny_bundle_dir)
    service = CoordinatorService.open(tmp_path / "c")
    key = base64.urlsafe_b64encode(bytes(32 * [1])).rstrip(b"=").decode()
    node = service.approve_node(service.enrol(service.create_enrolment_code().code, "h0", key).node_id).node_id
    base = service.list_models()[0]
    rounds = {}
    for secure in (False, True):
        plan = {"name": f"p{secure}", "architecture": "pneumonet-tiny", "input_size": 32, "learning_rate": 0.1,
                "base_model_sha256": base.sha256, "rounds": 1, "min_nodes": 2, "secure_aggregation": secure}
        rounds[secure] = service.join(service.publish_plan(json.dumps(plan)).plan_sha256, node).round_id
    yield ApiContext(service), node, rounds, base.size_bytes
    service.close()


def _request(length: int) -> Request:
    headers = [(b"content-length", str(length).encode())]
    return Request({"type": "http", "method": "PUT", "path": "/", "headers": headers})


def _check(context: ApiContext, round_id: int, node: str, phase: RoundPhase, length: int) -> None:
    async def run() -> None:
        async with checked_upload(_request(length), context, round_id, node, phase):
            pass

    asyncio.run(run())


def test_the_round_phase_and_roster_are_checked_before_the_body(setup):
    context, node, rounds, size = setup
    _check(context, rounds[False], node, RoundPhase.PLAIN_INPUT, size)  # allowed
    with pytest.raises(NotFound):
        _check(context, 999, node, RoundPhase.PLAIN_INPUT, size)
    with pytest.raises(Conflict, match="secure aggregation"):  # a secure round takes no plain update
        _check(context, rounds[True], node, RoundPhase.PLAIN_INPUT, size)
    with pytest.raises(Conflict, match="phase"):
        _check(context, rounds[False], node, RoundPhase.MASKED_INPUT, size)


def test_a_body_larger_than_the_rounds_model_can_need_is_refused_unread(setup):
    context, node, rounds, _size = setup
    with pytest.raises(TooLarge):
        _check(context, rounds[False], node, RoundPhase.PLAIN_INPUT, 512 * 1024 * 1024)


def test_one_upload_per_node_at_a_time(setup):
    context, node, rounds, size = setup

    async def overlapping() -> None:
        async with checked_upload(_request(size), context, rounds[False], node, RoundPhase.PLAIN_INPUT):
            with pytest.raises(Conflict, match="already sending"):
                async with checked_upload(_request(size), context, rounds[False], node, RoundPhase.PLAIN_INPUT):
                    pass

    asyncio.run(overlapping())
    _check(context, rounds[False], node, RoundPhase.PLAIN_INPUT, size)  # free again afterwards


def test_a_node_outside_the_key_roster_cannot_send_a_masked_input(setup):
    context, node, rounds, size = setup
    service = context.service
    from pneumodesk.coordinator.db import Round

    with service.sessions() as session:  # move the secure round to masked_input without this node's shares
        round_ = session.get(Round, rounds[True])
        round_.phase = RoundPhase.MASKED_INPUT.value
        session.commit()
    with pytest.raises(Forbidden, match="roster"):
        _check(context, rounds[True], node, RoundPhase.MASKED_INPUT, size)
