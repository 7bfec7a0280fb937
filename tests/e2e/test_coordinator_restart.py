"""End to end: stopping the coordinator mid-round and starting it again on the same folder loses nothing."""

from __future__ import annotations

import numpy as np

from .coordinator_harness import (
    approved_nodes,
    dyadic_update,
    model_list,
    on_both_databases,
    plan_json,
    publish_via_api,
    weighted_mean,
)


@on_both_databases
def test_round_resumes_after_a_restart(coordinator):
    # Prepare: a round with two of its three updates in.
    nodes = approved_nodes(coordinator, 3)
    operator = coordinator.operator_token()
    base = model_list(coordinator, operator)[0]
    plan = publish_via_api(coordinator, operator, plan_json(base["sha256"], min_nodes=3))["plan_sha256"]
    info = nodes[0].join(plan)
    weights = nodes[0].download(info["model_version"])
    updates, counts = [dyadic_update(weights, s) for s in (10, 11, 12)], [4, 2, 2]
    for node, update, count in zip(nodes[:2], updates[:2], counts[:2], strict=True):
        assert node.upload(info["round_id"], update, count).status_code == 200

    # Execute: kill the process without warning (SIGKILL), start a new one on the same folder.
    coordinator.stop(crash=True)
    coordinator.start()

    # Assert: tokens issued before the restart still work, the round kept its two updates, a retry is still
    # recognised, and the third update completes it with the exact weighted mean of all three.
    status = nodes[2].get(f"/rounds/{info['round_id']}").json()
    assert (status["state"], status["updates_received"]) == ("collecting", 2)
    assert nodes[0].upload(info["round_id"], updates[0], counts[0]).json()["counted"] is False
    assert nodes[2].upload(info["round_id"], updates[2], counts[2]).json()["round_state"] == "complete"
    result = nodes[1].download(model_list(coordinator, operator)[-1]["version"])
    expected = weighted_mean(updates, counts)
    for name in expected:
        np.testing.assert_array_equal(result[name], expected[name])
