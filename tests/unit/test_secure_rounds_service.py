"""Secure rounds in the coordinator's service layer, in process: plan checks, and a crash while unmasking."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from pneumodesk.coordinator.service import CoordinatorService
from pneumodesk.coordinator.setup import initialise
from pneumodesk.federation import PlanError, state_dict_from_bytes
from pneumodesk.federation.secagg import QuantisationError, SecAggNode, ShareDelivery, SurvivorList, UnmaskRequest
from pneumodesk.federation.secagg.vector import flatten_state
from pneumodesk.federation.secagg.wire import round_key

PASSWORD = "a long enough password"


@pytest.fixture
def directory(tmp_path, tiny_bundle_dir):
    initialise(tmp_path / "c", hosts=[], port=0, operator="admin", password=PASSWORD, model=tiny_bundle_dir)
    return tmp_path / "c"


def _plan(service: CoordinatorService, **changes) -> str:
    base = service.list_models()[0]
    plan = {"name": "p", "architecture": "pneumonet-tiny", "input_size": 32, "base_model_sha256": base.sha256,
            "learning_rate": 0.1, "rounds": 1, "min_nodes": 3, "secure_aggregation": True, **changes}
    return service.publish_plan(json.dumps(plan)).plan_sha256


def test_secure_plans_need_two_nodes_and_a_number_format_that_cannot_overflow(directory):
    service = CoordinatorService.open(directory)
    try:
        with pytest.raises(PlanError, match="at least 2 with secure aggregation"):
            _plan(service, min_nodes=1)
        with pytest.raises(QuantisationError, match="cannot be summed in 32 bits"):
            _plan(service, min_nodes=5000, secure_aggregation_clip=1000.0, secure_aggregation_max_examples=1_000_000)
        sha = _plan(service)
        assert service.plan_state(sha).round.phase == "advertise_keys"
    finally:
        service.close()


def test_a_crash_while_unmasking_is_finished_by_the_next_start(directory):
    service = CoordinatorService.open(directory)
    keys = [Ed25519PrivateKey.generate() for _ in range(3)]
    ids = []
    for i, key in enumerate(keys):
        public = base64.urlsafe_b64encode(key.public_key().public_bytes_raw()).rstrip(b"=").decode()
        node = service.enrol(service.create_enrolment_code().code, f"h{i}", public)
        ids.append(service.approve_node(node.node_id).node_id)
    sha = _plan(service)
    round_id = service.plan_state(sha).round.round_id
    secure = service.secure
    nodes = [SecAggNode.begin(round_key(service.config.node_audience, sha, round_id), node_id, key)
             for node_id, key in zip(ids, keys, strict=True)]
    for node in nodes:
        secure.advertise(round_id, node.state.node_id, node.advertisement.model_dump_json().encode())
    roster = secure.roster(round_id, ids[0])
    for node in nodes:
        secure.shares(round_id, node.state.node_id,
                      node.share_keys(roster.roster, roster.identity_keys).model_dump_json().encode())
    base = state_dict_from_bytes(service.model_weights(1)[0])
    vector, _ = flatten_state(base)
    deltas = [np.full(vector.size, 0.01 * (i + 1)) for i in range(3)]
    for node, delta in zip(nodes, deltas, strict=True):
        delivery = ShareDelivery.model_validate_json(secure.delivery(round_id, node.state.node_id).model_dump_json())
        secure.masked_input(round_id, node.state.node_id, node.masked_input(delivery, delta, 10).to_bytes(), None)
    survivors = SurvivorList.model_validate_json(secure.survivors(round_id, ids[0]).model_dump_json())
    for node, key in zip(nodes, keys, strict=True):
        secure.consistency(round_id, node.state.node_id,
                           node.confirm_survivors(survivors, key).model_dump_json().encode())
    request = UnmaskRequest.model_validate_json(secure.unmask_request(round_id, ids[0]).model_dump_json())
    answers = [node.unmask(request).model_dump_json().encode() for node in nodes[:2]]
    secure.unmask(round_id, ids[0], answers[0])

    def power_cut(*_args: object) -> None:
        raise RuntimeError("power cut")

    secure._publish = power_cut  # the t-th answer is stored, then the process dies before the model is written
    with pytest.raises(RuntimeError, match="power cut"):
        secure.unmask(round_id, ids[1], answers[1])
    assert service.round_status(round_id).state == "aggregating"
    service.close()

    restarted = CoordinatorService.open(directory)
    try:
        restarted.sweep()
        info = restarted.round_status(round_id)
        assert info.state == "complete" and info.result_version == 2
        new = state_dict_from_bytes(restarted.model_weights(2)[0])
        new_vector, _ = flatten_state(new)
        np.testing.assert_allclose(new_vector - vector, 0.02, atol=2e-5)
        assert not [p for p in (directory / "secagg").rglob("*") if p.is_file()]
    finally:
        restarted.close()
