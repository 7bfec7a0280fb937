"""End to end: 20 nodes upload at the same moment (each also retrying at once); every update counts once, exactly.

The issue asks for 11 M-parameter updates; on a 2-core CI machine 20 of them (880 MB over TLS) take minutes, so this
test uses the real pneumonet-s architecture (~0.6 M parameters, ~2.4 MB per update, 40 concurrent uploads) to stay
well under 30 s, and benchmarks/coordinator.py runs the 11 M-parameter case.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

from pneumodesk.model import ModelBundle, build_model
from tests.builders import make_tiny_bundle

from .coordinator_harness import (
    Coordinator,
    approved_nodes,
    dyadic_update,
    init_coordinator,
    model_list,
    plan_json,
    publish_via_api,
    weighted_mean,
)

NODES = 20


@pytest.fixture
def larger_coordinator(tmp_path):
    tiny = make_tiny_bundle(input_size=64)
    bundle = ModelBundle.from_model(build_model("pneumonet-s"), tiny.card.with_updates(architecture="pneumonet-s"))
    bundle.save(tmp_path / "bundle")
    server = Coordinator(init_coordinator(tmp_path / "coordinator", tmp_path / "bundle")).start()
    yield server
    server.stop()


def test_twenty_simultaneous_uploads_count_once_and_aggregate_exactly(larger_coordinator):
    coordinator = larger_coordinator
    nodes = approved_nodes(coordinator, NODES)
    operator = coordinator.operator_token()
    base = model_list(coordinator, operator)[0]
    plan = publish_via_api(coordinator, operator, plan_json(base["sha256"], min_nodes=NODES,
                                                            architecture="pneumonet-s", input_size=64))
    info = nodes[0].join(plan["plan_sha256"])
    weights = nodes[0].download(info["model_version"])
    updates = [dyadic_update(weights, seed) for seed in range(NODES)]
    counts = [1 + seed % 3 for seed in range(NODES)]
    counts[-1] += 64 - sum(counts)  # a power-of-two total keeps the exact mean representable
    from pneumodesk.federation.tensors import state_dict_to_bytes

    payloads = [state_dict_to_bytes(update) for update in updates]
    start = threading.Barrier(2 * NODES)
    results: list[tuple[int, int, dict]] = []
    lock = threading.Lock()

    def send(index: int) -> None:
        start.wait(timeout=60)
        response = nodes[index].upload_bytes(info["round_id"], payloads[index], counts[index])
        with lock:
            results.append((index, response.status_code, response.json()))

    threads = [threading.Thread(target=send, args=(i % NODES,)) for i in range(2 * NODES)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert len(results) == 2 * NODES and all(status == 200 for _, status, _ in results), results
    counted = sorted(index for index, _, body in results if body["counted"])
    assert counted == list(range(NODES)), "each node's update is counted exactly once"
    status = nodes[0].get(f"/rounds/{info['round_id']}").json()
    assert (status["state"], status["updates_received"]) == ("complete", NODES)
    newest = model_list(coordinator, operator)[-1]
    assert newest["contributors"] == NODES
    result = nodes[0].download(newest["version"])
    expected = weighted_mean(updates, counts)
    for name in expected:
        np.testing.assert_array_equal(result[name], expected[name])
