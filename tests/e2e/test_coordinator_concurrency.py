"""End to end: 20 nodes upload an 11 M-parameter update at the same moment (four of them sending it twice at once);
every update counts once and the aggregate is exactly the weighted mean. A node's second upload while its first is
still being received is refused (409: one upload per node at a time); a retry after the first ended counts nothing.

This is the issue's real case (11 M float32 parameters, 44 MB per update, ~1 GB over TLS): the coordinator adds each
update to the round's running sum as it arrives, so the round closes in a fraction of a second after the last one.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

from pneumodesk.federation.tensors import state_dict_to_bytes

from .coordinator_harness import (
    Coordinator,
    approved_nodes,
    dyadic_update,
    init_coordinator,
    model_list,
    plan_json,
    publish_via_api,
    random_bundle,
)

NODES, RETRIES, PARAMETERS = 20, 4, 11_000_000


@pytest.fixture
def large_model_coordinator(tmp_path):
    bundle = random_bundle(tmp_path / "bundle", PARAMETERS)
    server = Coordinator(init_coordinator(tmp_path / "coordinator", bundle)).start()
    yield server
    server.stop()


def test_twenty_simultaneous_11m_parameter_uploads_count_once_and_aggregate_exactly(large_model_coordinator):
    # Prepare: 20 approved nodes in one round; integer-valued updates and a power-of-two example total keep the
    # exact weighted mean representable in float32, so it can be compared bit for bit.
    coordinator = large_model_coordinator
    nodes = approved_nodes(coordinator, NODES)
    operator = coordinator.operator_token()
    base = model_list(coordinator, operator)[0]
    # The integer-valued updates lie far from the random base model: the plan's norm bound is set above them.
    card_plan = plan_json(base["sha256"], min_nodes=NODES, architecture="pneumonet-m", input_size=224,
                          max_update_norm=1e9)
    plan = publish_via_api(coordinator, operator, card_plan)
    info = nodes[0].join(plan["plan_sha256"])
    weights = nodes[0].download(info["model_version"])
    assert sum(a.size for a in weights.values()) == PARAMETERS
    counts = [1 + seed % 3 for seed in range(NODES)]
    counts[-1] += 64 - sum(counts)
    sums = {name: np.zeros(a.shape, dtype=np.float64) for name, a in weights.items()}
    payloads = []
    for seed, count in enumerate(counts):
        update = dyadic_update(weights, seed)
        for name, array in update.items():
            sums[name] += array.astype(np.float64) * count
        payloads.append(state_dict_to_bytes(update))
    expected = {name: (total / sum(counts)).astype(np.float32) for name, total in sums.items()}
    del sums, weights

    senders = list(range(NODES)) + list(range(RETRIES))
    start = threading.Barrier(len(senders))
    results: list[tuple[int, int, dict]] = []
    lock = threading.Lock()

    def send(index: int) -> None:
        start.wait(timeout=120)
        response = nodes[index].upload_bytes(info["round_id"], payloads[index], counts[index])
        with lock:
            results.append((index, response.status_code, response.json()))

    # Execute: every upload starts at the same moment.
    threads = [threading.Thread(target=send, args=(i,)) for i in senders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)

    # Assert: every node had one upload accepted and counted; a duplicate sent while the first was still arriving was
    # refused as a conflict or answered as already counted; the round closed with all 20 and the exact mean.
    assert len(results) == len(senders), results
    accepted = sorted(index for index, status, _ in results if status == 200)
    refused = [(index, body) for index, status, body in results if status != 200]
    assert sorted(set(accepted)) == list(range(NODES)), results
    assert all(index < RETRIES and body["error"] == "conflict" for index, body in refused), refused
    counted = sorted(index for index, status, body in results if status == 200 and body["counted"])
    assert counted == list(range(NODES)), "each node's update is counted exactly once"
    status = nodes[0].get(f"/rounds/{info['round_id']}").json()
    assert (status["state"], status["updates_received"]) == ("complete", NODES)
    newest = model_list(coordinator, operator)[-1]
    assert newest["contributors"] == NODES
    result = nodes[1].download(newest["version"])
    for name in expected:
        np.testing.assert_array_equal(result[name], expected[name])
