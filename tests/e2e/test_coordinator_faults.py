"""End to end, faults on ``serve --workers 2`` over a real PostgreSQL server: a worker killed (SIGKILL) while it
receives an update, a masked input or an unmasking answer, and the database restarted mid-round. Every accepted
update counts exactly once, the round completes with the exact result, and nodes carry on by retrying."""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid

import numpy as np
import pytest
import requests

from pneumodesk.federation.messages import EXAMPLES_HEADER, SHA256_HEADER
from pneumodesk.federation.secagg import QuantisationSpec, ShareDelivery, UnmaskRequest
from pneumodesk.federation.tensors import sha256_hex, state_dict_to_bytes

from .coordinator_harness import (
    TIMEOUT,
    Coordinator,
    approved_nodes,
    dyadic_update,
    init_coordinator,
    model_list,
    plan_json,
    publish_via_api,
    wait_until,
    weighted_mean,
)
from .secure_harness import (
    SecureNode,
    audience,
    flat_delta,
    local_deltas,
    path,
    round_info,
    secure_nodes,
    secure_plan_json,
    wait_phase,
)
from .test_secure_round import _check_model, _confirm_all, _expected, _unmask_until_done

WORKERS = 2


@pytest.fixture
def workers_coordinator(tmp_path, tiny_bundle_dir, postgres_server):
    directory = init_coordinator(tmp_path / "coordinator", tiny_bundle_dir, postgres_server.fresh_database_url())
    server = Coordinator(directory, workers=WORKERS).start()
    wait_until(lambda: len(server.worker_pids()) == WORKERS, what="both workers")
    yield server
    server.stop()


def _client_connections(coordinator: Coordinator) -> dict[int, int]:
    """Open client connections: the client's port → the worker process holding it."""
    import psutil

    held = {}
    for pid in coordinator.worker_pids():
        try:
            connections = psutil.Process(pid).net_connections(kind="tcp")
        except psutil.Error:  # a killed worker not yet reaped by the supervisor
            continue
        for connection in connections:
            if connection.status == psutil.CONN_ESTABLISHED and connection.laddr.port == coordinator.port:
                held[connection.raddr.port] = pid
    return held


def _kill_mid_upload(coordinator: Coordinator, node, path: str, data: bytes, headers: dict[str, str],
                     method: str = "PUT") -> None:
    """Send ``data`` slowly on a fresh connection and SIGKILL the worker receiving it halfway; wait until the
    supervisor has replaced it."""
    for session in coordinator._sessions:
        session.close()  # no idle keep-alive connection may be mistaken for the upload's
    before = set(coordinator.worker_pids())
    stale = set(_client_connections(coordinator))  # connections closing as this starts are not the upload's
    halfway = threading.Event()

    def slowly():  # type: ignore[no-untyped-def]
        step = max(1, len(data) // 8)
        for offset in range(0, len(data), step):
            if offset >= len(data) // 2:
                halfway.set()
                time.sleep(0.5)
            yield data[offset:offset + step]

    failures: list[BaseException] = []

    def upload() -> None:
        try:
            response = requests.request(method, f"{coordinator.url}{path}", data=slowly(), verify=str(coordinator.ca),
                                        headers={**node.headers(), **headers, "Connection": "close"},
                                        timeout=TIMEOUT)
            failures.append(AssertionError(f"the upload was answered {response.status_code}"))
        except requests.RequestException as error:
            failures.append(error)

    thread = threading.Thread(target=upload)
    thread.start()
    assert halfway.wait(TIMEOUT)
    victim = wait_until(lambda: next((pid for port, pid in _client_connections(coordinator).items()
                                      if port not in stale), None), what="the worker receiving the upload")
    os.kill(victim, signal.SIGKILL)
    thread.join(TIMEOUT)
    assert isinstance(failures[0], requests.RequestException), failures  # the node saw it fail: it will retry
    wait_until(lambda: len(coordinator.worker_pids()) == WORKERS and set(coordinator.worker_pids()) != before,
               what="the supervisor to replace the killed worker")


def test_a_worker_killed_mid_upload_loses_nothing_and_counts_the_retry_once(workers_coordinator):
    coordinator = workers_coordinator
    nodes = approved_nodes(coordinator, 3)
    operator = coordinator.operator_token()
    base = model_list(coordinator, operator)[0]
    plan = publish_via_api(coordinator, operator, plan_json(base["sha256"], min_nodes=3))
    round_id = nodes[0].join(plan["plan_sha256"])["round_id"]
    for node in nodes[1:]:
        node.join(plan["plan_sha256"])
    weights = nodes[0].download(1)
    updates, counts = [dyadic_update(weights, seed) for seed in range(3)], [1, 2, 5]
    data = state_dict_to_bytes(updates[0])
    headers = {EXAMPLES_HEADER: "1", SHA256_HEADER: sha256_hex(data), "Content-Type": "application/octet-stream"}
    _kill_mid_upload(coordinator, nodes[0], f"/rounds/{round_id}/update", data, headers)

    assert nodes[0].get(f"/rounds/{round_id}").json()["updates_received"] == 0  # nothing half-written counted
    for node in nodes:
        node.http = coordinator.session()
    retry = nodes[0].upload(round_id, updates[0], counts[0])
    assert retry.status_code == 200 and retry.json()["counted"] is True, retry.text
    assert nodes[0].upload(round_id, updates[0], counts[0]).json()["counted"] is False
    for i in (1, 2):
        assert nodes[i].upload(round_id, updates[i], counts[i]).status_code == 200

    info = wait_until(lambda: (i := nodes[1].get(f"/rounds/{round_id}").json())["state"] == "complete" and i,
                      what="the round to complete")
    assert info["updates_received"] == 3
    result = nodes[2].download(info["result_version"])
    for name, value in weighted_mean(updates, counts).items():
        np.testing.assert_array_equal(result[name], value)


def test_workers_killed_mid_masked_input_and_mid_unmasking_and_a_database_restart(workers_coordinator,
                                                                                  postgres_server):
    coordinator = workers_coordinator
    count = 3
    token = coordinator.operator_token()
    nodes = secure_nodes(coordinator, count)
    text = secure_plan_json(model_list(coordinator, token)[0]["sha256"], min_nodes=count, name=f"s {uuid.uuid4()}")
    sha = publish_via_api(coordinator, token, text)["plan_sha256"]
    joined = nodes[0].join(sha)
    round_id = joined["round_id"]
    base = nodes[0].download(joined["model_version"])
    secure = [SecureNode(n, sha, round_id, audience(coordinator)) for n in nodes]
    locals_, counts = local_deltas(base, count, seed=3), [10, 20, 30]
    for node in secure:
        node.advertise()
    wait_phase(nodes[0], round_id, "share_keys")
    for node in secure:
        node.share()
    wait_phase(nodes[0], round_id, "masked_input")

    # A worker dies while it receives node 0's masked input: the node retries on whichever worker answers.
    delivery = ShareDelivery.model_validate_json(secure[0].get("delivery").content)
    masked = secure[0].protocol.masked_input(delivery, flat_delta(locals_[0], base), counts[0]).to_bytes()
    _kill_mid_upload(coordinator, nodes[0], path(round_id, "update"), masked,
                     {SHA256_HEADER: sha256_hex(masked), "Content-Type": "application/octet-stream"})
    for node in nodes:
        node.http = coordinator.session()
    secure[0].send_masked(flat_delta(locals_[0], base), counts[0])
    secure[1].send_masked(flat_delta(locals_[1], base), counts[1])

    # The database restarts mid-round: requests in flight may fail, the workers reconnect, nodes retry.
    postgres_server.restart()
    for node in nodes:
        node.http = coordinator.session()
    wait_until(lambda: nodes[2].get(f"/rounds/{round_id}").status_code == 200, what="the coordinator to recover")
    secure[2].send_masked(flat_delta(locals_[2], base), counts[2])
    secure[0].send_masked(flat_delta(locals_[0], base), counts[0])  # an identical retry counts once

    _confirm_all(secure, round_id)
    # A worker dies while it receives node 0's unmasking answer: the node asks again and answers again.
    request = UnmaskRequest.model_validate_json(secure[0].get("unmask-request").content)
    reply = secure[0].protocol.unmask(request).model_dump_json().encode()
    _kill_mid_upload(coordinator, nodes[0], path(round_id, "unmask"), reply, {"Content-Type": "application/json"},
                     method="POST")
    for node in nodes:
        node.http = coordinator.session()
    assert round_info(nodes[0], round_id)["phase"] == "unmasking"
    _unmask_until_done(secure)
    info = wait_phase(nodes[0], round_id, "complete")
    _check_model(nodes[0], info["result_version"], _expected(base, locals_, counts),
                 QuantisationSpec.for_round(count, 1.0, 10_000))
