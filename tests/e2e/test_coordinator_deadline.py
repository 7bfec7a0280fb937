"""End to end: a round whose deadline passes with fewer than min_nodes updates fails, with its reason, over HTTP."""

from __future__ import annotations

import time

from .coordinator_harness import (
    approved_nodes,
    dyadic_update,
    model_list,
    on_both_databases,
    plan_json,
    publish_via_api,
)


@on_both_databases
def test_a_round_past_its_deadline_without_enough_updates_fails_and_the_next_opens(coordinator):
    # Prepare: a two-round plan needing 2 updates per round within 5 s (the schema's minimum); one node uploads.
    nodes = approved_nodes(coordinator, 2)
    operator = coordinator.operator_token()
    base = model_list(coordinator, operator)[0]
    plan = publish_via_api(coordinator, operator, plan_json(base["sha256"], min_nodes=2, rounds=2, deadline=5))
    sha = plan["plan_sha256"]
    info = nodes[0].join(sha)
    weights = nodes[0].download(info["model_version"])
    receipt = nodes[0].upload(info["round_id"], dyadic_update(weights, 3), 8).json()
    assert (receipt["counted"], receipt["round_state"]) == (True, "collecting")
    started = time.monotonic()

    # Execute: the other node long-polls; the deadline passes without its update.
    seen = nodes[1].get(f"/plans/{sha}/wait").json()["round"]["revision"]
    answer = nodes[1].get(f"/plans/{sha}/wait", params={"since": seen, "timeout": 30}).json()

    # Assert: the poll answered when the round failed (not at its timeout); the round says why; the plan's next
    # round opened from the same model; a late upload to the failed round is refused with a clear message.
    assert time.monotonic() - started < 20
    assert answer["changed"] is True and answer["round"]["number"] == 2 and answer["round"]["state"] == "open"
    assert answer["round"]["model_version"] == info["model_version"]
    failed = nodes[1].get(f"/rounds/{info['round_id']}").json()
    assert failed["state"] == "failed" and failed["result_version"] is None
    assert failed["reason"] == "deadline passed with 1 of 2 updates"
    late = nodes[1].upload(info["round_id"], dyadic_update(weights, 4), 8)
    assert late.status_code == 409 and late.json() == {
        "error": "conflict", "message": "Round 1 is failed and accepts no more updates."}
    assert len(model_list(coordinator, operator)) == 1, "a failed round publishes no model"
    # The failed round's update is deleted: only the model's weights remain in the blob store.
    assert sum(1 for p in (coordinator.directory / "blobs").rglob("*") if p.is_file()) == 1
