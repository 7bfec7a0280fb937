"""Secure aggregation end to end over real TLS: a real coordinator subprocess and simulated nodes that run the
protocol (``SecAggNode``) — the new model is plain FedAvg of the survivors within the quantisation error, drop-outs
down to the threshold are tolerated, fewer fail cleanly, a restart mid-round loses nothing, and what the
coordinator stores for a node is masked."""

from __future__ import annotations

import uuid

import numpy as np
import pytest

from pneumodesk.federation.secagg import QuantisationSpec
from pneumodesk.federation.tensors import state_dict_to_bytes

from .coordinator_harness import model_list, on_both_databases, publish_via_api
from .secure_harness import (
    SecureNode,
    audience,
    exchange_keys,
    flat_delta,
    local_deltas,
    masked_words,
    round_info,
    secure_nodes,
    secure_plan_json,
    wait_phase,
)


def _start_round(coordinator, count: int, **plan):  # type: ignore[no-untyped-def]
    token = coordinator.operator_token()
    base_info = model_list(coordinator, token)[0]
    nodes = secure_nodes(coordinator, count)
    text = secure_plan_json(base_info["sha256"], min_nodes=count, name=f"secure {uuid.uuid4()}", **plan)
    sha = publish_via_api(coordinator, token, text)["plan_sha256"]
    joined = nodes[0].join(sha)
    assert joined["phase"] == "advertise_keys"
    base = nodes[0].download(joined["model_version"])
    fed = audience(coordinator)
    return nodes, [SecureNode(n, sha, joined["round_id"], fed) for n in nodes], base, joined["round_id"], token


def _expected(base: dict[str, np.ndarray], locals_: list[dict[str, np.ndarray]], counts: list[int],
              clip: float = 1.0) -> dict[str, np.ndarray]:
    """FedAvg of the (clipped) deltas added to the global model, in float64."""
    total = sum(counts)
    return {name: base[name].astype(np.float64) + sum(
        np.clip(local[name].astype(np.float64) - base[name], -clip, clip) * n
        for local, n in zip(locals_, counts, strict=True)) / total for name in base}


def _run(secure: list[SecureNode], locals_, base, counts, round_id: int, *, drop_after_shares=(),
         drop_after_masking=()) -> dict:
    first = secure[0].node
    for node in secure:
        node.advertise()
    wait_phase(first, round_id, "share_keys")
    for node in secure:
        node.share()
    alive = [i for i in range(len(secure)) if i not in drop_after_shares]
    if len(alive) < len(secure):
        wait_phase(secure[alive[0]].node, round_id, "masked_input")
    else:
        wait_phase(first, round_id, "masked_input")
    for i in alive:
        secure[i].send_masked(flat_delta(locals_[i], base), counts[i])
    answering = [i for i in alive if i not in drop_after_masking]
    info = _confirm_all([secure[i] for i in answering], round_id)
    assert info["state"] == "collecting"
    _unmask_until_done([secure[i] for i in answering])
    return wait_phase(secure[answering[0]].node, round_id, "complete")


def _confirm_all(nodes: list[SecureNode], round_id: int) -> dict:
    """Each node signs the survivor list; the round moves to unmasking once all of U3 signed (or at the deadline)."""
    wait_phase(nodes[0].node, round_id, "consistency_check")
    for node in nodes:
        node.confirm()
    return wait_phase(nodes[0].node, round_id, "unmasking")


def _unmask_until_done(nodes: list[SecureNode]) -> None:
    """Answer the unmasking request node by node: the coordinator finishes as soon as t answers are in."""
    for node in nodes:
        if node.unmask()["round_state"] != "collecting":
            return


def _check_model(node, version: int, expected: dict[str, np.ndarray], spec: QuantisationSpec) -> None:
    result = node.download(version)
    for name, value in expected.items():
        # quantisation error of the mean, then float32 rounding of the new weights
        tolerance = spec.error_bound + np.abs(value).max() * 2e-7 + 1e-9
        np.testing.assert_allclose(result[name].astype(np.float64), value, rtol=0, atol=tolerance)


@pytest.mark.parametrize("count", [3, 5])
def test_secure_round_equals_fedavg_within_quantisation_error(shared_coordinator, count):
    coordinator = shared_coordinator
    nodes, secure, base, round_id, token = _start_round(coordinator, count)
    locals_ = local_deltas(base, count, seed=count)
    counts = [17 + 13 * i for i in range(count)]
    info = _run(secure, locals_, base, counts, round_id)
    version = info["result_version"]
    model = next(m for m in model_list(coordinator, token) if m["version"] == version)
    assert model["contributors"] == count and model["parent_version"] == 1
    spec = QuantisationSpec.for_round(count, 1.0, 10_000)
    _check_model(nodes[0], version, _expected(base, locals_, counts), spec)
    # nothing of the round is left on the coordinator but the new model
    assert not [p for p in (coordinator.directory / "secagg").rglob("*") if p.is_file()]


def test_drop_outs_after_sharing_and_after_masking_down_to_threshold(shared_coordinator):
    coordinator = shared_coordinator
    count = 5  # t = 3: two may drop
    nodes, secure, base, round_id, token = _start_round(coordinator, count, phase_seconds=3)
    locals_ = local_deltas(base, count, seed=11)
    counts = [40, 25, 31, 12, 50]
    info = _run(secure, locals_, base, counts, round_id, drop_after_shares=(1,), drop_after_masking=(3,))
    model = next(m for m in model_list(coordinator, token) if m["version"] == info["result_version"])
    survivors = [0, 2, 3, 4]  # node 3 vanished after its masked input: its input is in the sum
    assert model["contributors"] == len(survivors)
    spec = QuantisationSpec.for_round(count, 1.0, 10_000)
    expected = _expected(base, [locals_[i] for i in survivors], [counts[i] for i in survivors])
    _check_model(nodes[0], info["result_version"], expected, spec)


def test_fewer_than_threshold_survivors_fail_cleanly(shared_coordinator):
    coordinator = shared_coordinator
    count = 3  # t = 2
    nodes, secure, base, round_id, token = _start_round(coordinator, count, phase_seconds=2)
    models_before = len(model_list(coordinator, token))
    exchange_keys(secure, nodes[0], round_id)
    secure[0].send_masked(flat_delta(local_deltas(base, 1)[0], base), 10)  # the other two vanish
    info = wait_phase(nodes[0], round_id, "failed")
    assert "only 1 nodes sent a masked input" in info["reason"] and "at least 2" in info["reason"]
    assert len(model_list(coordinator, token)) == models_before  # no model version came of it
    assert not [p for p in (coordinator.directory / "secagg").rglob("*") if p.is_file()]
    late = secure[1].node.http.get(f"{coordinator.url}/rounds/{round_id}/secure/delivery",
                                   headers=secure[1].node.headers(), timeout=30)
    assert late.status_code == 409 and "failed" in late.json()["message"]


@on_both_databases
def test_coordinator_restart_mid_round_completes(coordinator):
    count = 4
    nodes, secure, base, round_id, _token = _start_round(coordinator, count)
    locals_ = local_deltas(base, count, seed=5)
    counts = [10, 20, 30, 40]
    exchange_keys(secure, nodes[0], round_id)
    for i in range(2):
        secure[i].send_masked(flat_delta(locals_[i], base), counts[i])
    coordinator.stop(crash=True)
    coordinator.start()
    for node in nodes:
        node.http = coordinator.session()
        assert node.request_token().status_code == 200
    secure[0].send_masked(flat_delta(locals_[0], base), counts[0])  # an identical retry after the restart
    for i in range(2, count):
        secure[i].send_masked(flat_delta(locals_[i], base), counts[i])
    wait_phase(nodes[0], round_id, "consistency_check")
    coordinator.stop(crash=True)
    coordinator.start()
    for node in nodes:
        node.http = coordinator.session()
        assert node.request_token().status_code == 200
    for node in secure[:2]:  # half sign before a second crash, the rest after it
        node.confirm()
    coordinator.stop(crash=True)
    coordinator.start()
    for node in nodes:
        node.http = coordinator.session()
        assert node.request_token().status_code == 200
    for node in secure[2:]:
        node.confirm()
    wait_phase(nodes[0], round_id, "unmasking")
    _unmask_until_done(secure)
    info = wait_phase(nodes[0], round_id, "complete")
    spec = QuantisationSpec.for_round(count, 1.0, 10_000)
    _check_model(nodes[0], info["result_version"], _expected(base, locals_, counts), spec)


def test_what_the_coordinator_stores_for_a_node_is_masked(shared_coordinator):
    coordinator = shared_coordinator
    count = 3
    nodes, secure, base, round_id, _token = _start_round(coordinator, count)
    locals_ = local_deltas(base, count, seed=3)
    exchange_keys(secure, nodes[0], round_id)
    secure[0].send_masked(flat_delta(locals_[0], base), 21)
    stored = [p.read_bytes() for p in (coordinator.directory / "secagg").rglob("*") if p.is_file()]
    blobs = [data for data in stored if data == secure[0].masked]
    assert len(blobs) == 1, "the coordinator keeps exactly the masked input the node sent"
    words = masked_words(blobs[0]).astype(np.int64)
    spec = QuantisationSpec.for_round(count, 1.0, 10_000)
    from pneumodesk.federation.secagg import encode

    plain = encode(flat_delta(locals_[0], base), 21, spec).astype(np.int64)
    assert np.mean(words == plain) < 0.01  # the masked words look nothing like the encoded update
    assert words[-1] != 21  # nor is the example count readable
    update_bytes = state_dict_to_bytes(locals_[0])
    assert not any(update_bytes[-4096:] in data for data in stored)
    # the masks are uniform: the masked words are spread over the whole 32-bit range
    assert masked_words(blobs[0]).max() > 2**31 and masked_words(blobs[0]).min() < 2**31
    round_ = round_info(nodes[0], round_id)
    assert round_["phase"] == "masked_input" and round_["updates_received"] == 1
    for i in (1, 2):
        secure[i].send_masked(flat_delta(locals_[i], base), 21)
    _confirm_all(secure, round_id)
    _unmask_until_done(secure)
    wait_phase(nodes[0], round_id, "complete")
    assert not [p for p in (coordinator.directory / "secagg").rglob("*") if p.is_file()]


def test_messages_out_of_turn_or_not_genuine_are_refused(shared_coordinator):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from pneumodesk.federation.secagg import SecAggNode

    coordinator = shared_coordinator
    nodes, secure, base, round_id, _token = _start_round(coordinator, 3)
    impostor = SecAggNode.begin(secure[0].protocol.state.round_id, nodes[0].node_id, Ed25519PrivateKey.generate())
    forged = secure[0].post("advertisement", impostor.advertisement.model_dump_json().encode())
    assert forged.status_code == 422 and "not signed by its enrolled key" in forged.json()["message"]
    assert secure[0].advertise()["counted"] is True
    assert secure[0].advertise()["counted"] is False  # an identical retry counts once
    other = SecAggNode.begin(secure[0].protocol.state.round_id, nodes[0].node_id, nodes[0].key)
    second = secure[0].post("advertisement", other.advertisement.model_dump_json().encode())
    assert second.status_code == 409 and "different" in second.json()["message"]
    early = secure[0].get("roster")
    assert early.status_code == 409 and "advertise_keys" in early.json()["message"]
    plain = nodes[1].upload(round_id, base, 10)
    assert plain.status_code == 409 and "secure aggregation" in plain.json()["message"]
    for node in secure[1:]:
        node.advertise()
    wait_phase(nodes[0], round_id, "share_keys")
    late = nodes[0].http.post(f"{coordinator.url}/plans/{round_info(nodes[0], round_id)['plan_sha256']}/join",
                              headers=nodes[0].headers(), timeout=30)
    assert late.status_code == 409 and "key exchange" in late.json()["message"]
    someone_else = secure[1].post("shares", secure[0].protocol.share_keys(
        secure[0].roster().roster, secure[0].roster().identity_keys).model_dump_json().encode())
    assert someone_else.status_code == 403


def test_too_few_nodes_advertising_by_the_round_deadline_fail_the_round(shared_coordinator):
    coordinator = shared_coordinator
    nodes, secure, _base, round_id, _token = _start_round(coordinator, 3, deadline=5)
    secure[0].advertise()
    info = wait_phase(nodes[0], round_id, "failed", timeout=30)
    assert info["reason"] == "deadline passed with 1 of 3 nodes advertising keys"
    assert round_info(nodes[0], round_id)["phase"] == "advertise_keys"
