"""End to end: ``serve --workers 2`` on a real PostgreSQL server — any worker takes any request, plain and secure
rounds give the exact result, and long polls wake across workers.

Every request here opens a new connection (``Connection: close``), so consecutive requests of one node land on
either worker, as behind a load balancer."""

from __future__ import annotations

import uuid

import numpy as np
import pytest

from pneumodesk.federation.secagg import QuantisationSpec

from .coordinator_harness import (
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
from .secure_harness import SecureNode, audience, local_deltas, secure_nodes, secure_plan_json, wait_phase
from .test_secure_round import _check_model, _expected, _run

WORKERS = 2


@pytest.fixture
def workers_coordinator(tmp_path, tiny_bundle_dir, postgres_server):
    directory = init_coordinator(tmp_path / "coordinator", tiny_bundle_dir, postgres_server.fresh_database_url())
    server = Coordinator(directory, workers=WORKERS)
    session = server.session
    server.session = lambda: _closing(session())  # type: ignore[method-assign]
    server.start()
    assert len(wait_until(lambda: len(server.worker_pids()) == WORKERS and server.worker_pids(),
                          what="both workers")) == WORKERS
    yield server
    server.stop()


def _closing(session):  # type: ignore[no-untyped-def]
    session.headers["Connection"] = "close"
    return session


def test_a_plain_round_on_two_workers_gives_exactly_the_weighted_mean(workers_coordinator):
    coordinator = workers_coordinator
    nodes = approved_nodes(coordinator, 3)
    operator = coordinator.operator_token()
    base = model_list(coordinator, operator)[0]
    plan = publish_via_api(coordinator, operator, plan_json(base["sha256"], min_nodes=3))
    joined = [node.join(plan["plan_sha256"]) for node in nodes]
    round_id = joined[0]["round_id"]
    weights = nodes[0].download(joined[0]["model_version"])
    updates, counts = [dyadic_update(weights, seed) for seed in range(3)], [1, 2, 5]
    for node, update, count in zip(nodes, updates, counts, strict=True):
        first = node.upload(round_id, update, count)
        assert first.status_code == 200 and first.json()["counted"] is True, first.text
        retry = node.upload(round_id, update, count)  # a lost answer: the retry may reach the other worker
        assert retry.status_code == 200 and retry.json()["counted"] is False, retry.text

    def finished() -> dict | None:
        info = nodes[0].get(f"/rounds/{round_id}").json()
        return info if info["state"] == "complete" else None

    info = wait_until(finished, what="the round to complete")
    assert info["updates_received"] == 3
    result = nodes[1].download(info["result_version"])
    expected = weighted_mean(updates, counts)
    for name, value in expected.items():
        np.testing.assert_array_equal(result[name], value)
    assert model_list(coordinator, operator)[-1]["contributors"] == 3


def test_a_secure_round_on_two_workers_equals_fedavg(workers_coordinator):
    coordinator = workers_coordinator
    count = 3
    token = coordinator.operator_token()
    base_info = model_list(coordinator, token)[0]
    nodes = secure_nodes(coordinator, count)
    text = secure_plan_json(base_info["sha256"], min_nodes=count, name=f"secure {uuid.uuid4()}")
    sha = publish_via_api(coordinator, token, text)["plan_sha256"]
    joined = nodes[0].join(sha)
    base = nodes[0].download(joined["model_version"])
    secure = [SecureNode(n, sha, joined["round_id"], audience(coordinator)) for n in nodes]
    locals_, counts = local_deltas(base, count, seed=11), [10, 20, 30]
    info = _run(secure, locals_, base, counts, joined["round_id"])
    _check_model(nodes[0], info["result_version"], _expected(base, locals_, counts),
                 QuantisationSpec.for_round(count, 1.0, 10_000))
    assert wait_phase(nodes[1], joined["round_id"], "complete")["result_version"] == info["result_version"]
