"""End to end, faults on ``serve --workers 2`` over a real PostgreSQL server: a worker killed (SIGKILL) while it
receives an update, a masked input or an unmasking answer, and the database restarted mid-round. Every accepted
update counts exactly once, the round completes with the exact result, and nodes carry on by retrying."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator

import numpy as np
import pytest
import requests

from pneumodesk.federation.messages import EXAMPLES_HEADER, SHA256_HEADER
from pneumodesk.federation.secagg import QuantisationSpec, ShareDelivery, UnmaskRequest
from pneumodesk.federation.tensors import sha256_hex, state_dict_to_bytes
from tests.postgres_server import PostgresServer

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
    exchange_keys,
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
    exchange_keys(secure, nodes[0], round_id)

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


# -- a worker killed while it publishes a round's result ------------------------------------------------------------
#
# The test holds PostgreSQL's SHARE lock on ``model_versions`` (reads and foreign-key checks go on, writes wait):
# the worker finishing a round has counted the last update or unmasking answer, committed ``aggregating``, computed
# the aggregate (plain: the weighted mean; secure: the unmasked sum) and written its blob, and now waits at the INSERT
# of the new model version. It is killed there; the supervisor's replacement worker resumes the round at start (its
# sweep). The other worker's periodic sweep is slowed so that it is the replacement that resumes.


@pytest.fixture
def slow_sweep_coordinator(tmp_path, tiny_bundle_dir, postgres_server):
    directory = init_coordinator(tmp_path / "coordinator", tiny_bundle_dir, postgres_server.fresh_database_url())
    settings = json.loads((directory / "coordinator.json").read_text())
    settings["sweep_seconds"] = 3600.0  # only a worker's start-up sweep resumes rounds
    (directory / "coordinator.json").write_text(json.dumps(settings))
    server = Coordinator(directory, workers=WORKERS).start()
    wait_until(lambda: len(server.worker_pids()) == WORKERS, what="both workers")
    yield server
    server.stop()


def _database_uri(coordinator: Coordinator) -> str:
    url = json.loads((coordinator.directory / "coordinator.json").read_text())["database_url"]
    return PostgresServer.libpq_uri(url)


@contextlib.contextmanager
def _publication_held(coordinator: Coordinator) -> Iterator[Callable[[], bool]]:
    """Hold every new model version back; yields a check: is a worker waiting at the INSERT of one?"""
    import psycopg

    uri = _database_uri(coordinator)
    with psycopg.connect(uri) as holder, psycopg.connect(uri, autocommit=True) as observer:
        holder.execute("LOCK TABLE model_versions IN SHARE MODE")

        def waiting() -> bool:
            row = observer.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND "
                                   "query ILIKE 'INSERT INTO model_versions%'").fetchone()
            return bool(row and row[0])

        yield waiting
        holder.rollback()


def _kill_if_it_publishes(coordinator: Coordinator, send: Callable[[requests.Session], requests.Response],
                          publishing: Callable[[], bool]) -> requests.Response | None:
    """Send one request on a fresh connection. If it is answered, return the answer; if instead the worker taking it
    gets stuck publishing a model version, SIGKILL that worker (the node sees its request fail) and return None."""
    for session in coordinator._sessions:
        session.close()
    before = set(coordinator.worker_pids())
    stale = set(_client_connections(coordinator))
    session = coordinator.session()
    session.headers["Connection"] = "close"
    outcome: list[requests.Response | BaseException] = []

    def request() -> None:
        try:
            outcome.append(send(session))
        except requests.RequestException as error:
            outcome.append(error)

    thread = threading.Thread(target=request)
    thread.start()
    wait_until(lambda: outcome or publishing(), what="an answer or a worker publishing")
    if outcome:
        thread.join(TIMEOUT)
        answer = outcome[0]
        assert isinstance(answer, requests.Response), answer
        return answer
    victim = wait_until(lambda: next((pid for port, pid in _client_connections(coordinator).items()
                                      if port not in stale), None), what="the worker publishing")
    os.kill(victim, signal.SIGKILL)
    thread.join(TIMEOUT)
    assert isinstance(outcome[0], requests.RequestException), outcome  # the node saw it fail: it will retry
    wait_until(lambda: len(coordinator.worker_pids()) == WORKERS and set(coordinator.worker_pids()) != before,
               what="the supervisor to replace the killed worker")
    return None


def _versions_of_round(coordinator: Coordinator, operator: str, plan_sha: str, number: int) -> list[dict]:
    return [m for m in model_list(coordinator, operator)
            if m.get("plan_sha256") == plan_sha and m.get("round_number") == number]


def test_a_worker_killed_mid_aggregation_of_a_plain_round_is_resumed_by_its_replacement(slow_sweep_coordinator):
    coordinator = slow_sweep_coordinator
    nodes = approved_nodes(coordinator, 3)
    operator = coordinator.operator_token()
    base = model_list(coordinator, operator)[0]
    sha = publish_via_api(coordinator, operator, plan_json(base["sha256"], min_nodes=3))["plan_sha256"]
    round_id = nodes[0].join(sha)["round_id"]
    for node in nodes[1:]:
        node.join(sha)
    weights = nodes[0].download(1)
    updates, counts = [dyadic_update(weights, seed) for seed in range(3)], [3, 1, 4]
    for i in (0, 1):
        assert nodes[i].upload(round_id, updates[i], counts[i]).json()["counted"] is True

    last = state_dict_to_bytes(updates[2])

    def upload(session: requests.Session) -> requests.Response:
        nodes[2].http = session
        return nodes[2].upload_bytes(round_id, last, counts[2])

    with _publication_held(coordinator) as publishing:
        assert _kill_if_it_publishes(coordinator, upload, publishing) is None
        held = nodes[0].get(f"/rounds/{round_id}").json()  # nothing half-done is served meanwhile
        assert held["state"] == "aggregating" and held["result_version"] is None, held
        assert _versions_of_round(coordinator, operator, sha, 1) == []

    for node in nodes:
        node.http = coordinator.session()
    info = wait_until(lambda: (i := nodes[1].get(f"/rounds/{round_id}").json())["state"] == "complete" and i,
                      what="the replacement worker to finish the round")
    retry = nodes[2].upload_bytes(round_id, last, counts[2])  # the node's retry: accepted before, not counted again
    assert retry.status_code == 200 and retry.json()["counted"] is False, retry.text
    assert info["updates_received"] == 3
    published = _versions_of_round(coordinator, operator, sha, 1)
    assert [m["version"] for m in published] == [info["result_version"]]
    assert published[0]["contributors"] == 3
    result = nodes[0].download(info["result_version"])
    for name, value in weighted_mean(updates, counts).items():
        np.testing.assert_array_equal(result[name], value)


def test_a_worker_killed_mid_unmasking_of_a_secure_round_is_resumed_by_its_replacement(slow_sweep_coordinator):
    coordinator = slow_sweep_coordinator
    count = 3
    operator = coordinator.operator_token()
    nodes = secure_nodes(coordinator, count)
    text = secure_plan_json(model_list(coordinator, operator)[0]["sha256"], min_nodes=count, name=f"s {uuid.uuid4()}")
    sha = publish_via_api(coordinator, operator, text)["plan_sha256"]
    joined = nodes[0].join(sha)
    round_id = joined["round_id"]
    base = nodes[0].download(joined["model_version"])
    secure = [SecureNode(n, sha, round_id, audience(coordinator)) for n in nodes]
    locals_, counts = local_deltas(base, count, seed=5), [7, 11, 13]
    exchange_keys(secure, nodes[0], round_id)
    for node, local, examples in zip(secure, locals_, counts, strict=True):
        node.send_masked(flat_delta(local, base), examples)
    _confirm_all(secure, round_id)

    killed: tuple[SecureNode, bytes] | None = None
    with _publication_held(coordinator) as publishing:
        for node in secure:  # answers until one completes the unmasking: its worker is killed as it publishes
            request = UnmaskRequest.model_validate_json(node.get("unmask-request").content)
            reply = node.protocol.unmask(request).model_dump_json().encode()

            def answer(session: requests.Session, node: SecureNode = node, reply: bytes = reply) -> requests.Response:
                node.node.http = session
                return node.post("unmask", reply)

            response = _kill_if_it_publishes(coordinator, answer, publishing)
            if response is None:
                killed = (node, reply)
                break
            assert response.status_code == 200 and response.json()["round_state"] == "collecting", response.text
        assert killed is not None, "no unmasking answer completed the round"
        held = round_info(nodes[0], round_id)
        assert held["state"] == "aggregating" and held["result_version"] is None, held
        assert _versions_of_round(coordinator, operator, sha, 1) == []

    for node in nodes:
        node.http = coordinator.session()
    info = wait_phase(nodes[0], round_id, "complete")
    node, reply = killed
    retry = node.post("unmask", reply)  # the node's retry: accepted before the kill, not counted again
    assert retry.status_code == 200 and retry.json()["counted"] is False, retry.text
    published = _versions_of_round(coordinator, operator, sha, 1)
    assert [m["version"] for m in published] == [info["result_version"]]
    assert published[0]["contributors"] == count
    _check_model(nodes[0], info["result_version"], _expected(base, locals_, counts),
                 QuantisationSpec.for_round(count, 1.0, 10_000))


def _assert_told_to_retry(response: requests.Response) -> None:
    """A clear, retryable answer: 503, the ``unavailable`` code a node's client retries on, and when to retry."""
    assert response.status_code == 503, response.text
    assert response.json()["error"] == "unavailable" and "database" in response.json()["message"], response.text
    assert int(response.headers["Retry-After"]) > 0


@contextlib.contextmanager
def _database_refusing(coordinator: Coordinator) -> Iterator[None]:
    """The coordinator's database refuses new connections and its open ones are cut, until the block ends."""
    import psycopg

    uri = _database_uri(coordinator)
    name = psycopg.conninfo.conninfo_to_dict(uri)["dbname"]
    with psycopg.connect(psycopg.conninfo.make_conninfo(uri, dbname="postgres"), autocommit=True) as admin:
        admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
        try:
            yield
        finally:
            admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')


def test_the_database_restarted_mid_upload_of_a_plain_round_counts_every_update_once(workers_coordinator,
                                                                                       postgres_server):
    coordinator = workers_coordinator
    nodes = approved_nodes(coordinator, 3)
    operator = coordinator.operator_token()
    base = model_list(coordinator, operator)[0]
    sha = publish_via_api(coordinator, operator, plan_json(base["sha256"], min_nodes=3))["plan_sha256"]
    round_id = nodes[0].join(sha)["round_id"]
    for node in nodes[1:]:
        node.join(sha)
    weights = nodes[0].download(1)
    updates, counts = [dyadic_update(weights, seed) for seed in range(3)], [2, 5, 1]
    assert nodes[0].upload(round_id, updates[0], counts[0]).json()["counted"] is True

    # Node 1's upload is on the wire (checked against the round, half its body sent) when PostgreSQL restarts.
    data = state_dict_to_bytes(updates[1])
    halfway, restarted = threading.Event(), threading.Event()

    def slowly():  # type: ignore[no-untyped-def]
        step = max(1, len(data) // 8)
        for offset in range(0, len(data), step):
            if offset >= len(data) // 2 and not halfway.is_set():
                halfway.set()
                assert restarted.wait(TIMEOUT)
            yield data[offset:offset + step]

    outcome: list[requests.Response | BaseException] = []

    def upload() -> None:
        headers = {**nodes[1].headers(), EXAMPLES_HEADER: str(counts[1]), SHA256_HEADER: sha256_hex(data),
                   "Content-Type": "application/octet-stream", "Connection": "close"}
        try:
            outcome.append(requests.put(f"{coordinator.url}/rounds/{round_id}/update", data=slowly(),
                                        headers=headers, verify=str(coordinator.ca), timeout=TIMEOUT))
        except requests.RequestException as error:
            outcome.append(error)

    thread = threading.Thread(target=upload)
    thread.start()
    assert halfway.wait(TIMEOUT)
    postgres_server.restart()
    restarted.set()
    thread.join(TIMEOUT)
    first = outcome[0]
    # Either it was counted (the worker reconnected) or the node was told to retry: never a silent loss.
    assert isinstance(first, requests.Response), first
    if first.status_code == 200:
        assert first.json()["counted"] is True
    else:
        _assert_told_to_retry(first)

    for node in nodes:
        node.http = coordinator.session()
    retry = wait_until(lambda: (r := nodes[1].upload(round_id, updates[1], counts[1])).status_code == 200 and r,
                       what="node 1's retry to be answered")
    counted_before = isinstance(first, requests.Response) and first.status_code == 200
    assert retry.json()["counted"] is not counted_before  # counted exactly once, by the first try or the retry
    assert nodes[0].upload(round_id, updates[0], counts[0]).json()["counted"] is False

    # The database refuses every connection (as while it is down or failing over): node 2 is told to come back.
    with _database_refusing(coordinator):
        _assert_told_to_retry(nodes[2].upload(round_id, updates[2], counts[2]))
    for node in nodes:
        node.http = coordinator.session()
    retry = wait_until(lambda: (r := nodes[2].upload(round_id, updates[2], counts[2])).status_code == 200 and r,
                       what="node 2's retry to be answered")
    assert retry.json()["counted"] is True

    info = wait_until(lambda: (i := nodes[2].get(f"/rounds/{round_id}").json())["state"] == "complete" and i,
                      what="the round to complete")
    assert info["updates_received"] == 3
    assert [m["version"] for m in _versions_of_round(coordinator, operator, sha, 1)] == [info["result_version"]]
    result = nodes[0].download(info["result_version"])
    for name, value in weighted_mean(updates, counts).items():
        np.testing.assert_array_equal(result[name], value)
