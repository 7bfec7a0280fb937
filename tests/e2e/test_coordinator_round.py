"""End to end: a full plain FedAvg round with three simulated nodes, replays, long polling and model export."""

from __future__ import annotations

import json
import threading
import time

import numpy as np

from pneumodesk.model import load_bundle

from .coordinator_harness import (
    approved_nodes,
    coordinator_cli,
    dyadic_update,
    model_list,
    on_both_databases,
    plan_json,
    publish_via_api,
    weighted_mean,
)


def _blob_count(directory) -> int:
    return sum(1 for path in (directory / "blobs").rglob("*") if path.is_file())


@on_both_databases
def test_three_nodes_give_exactly_the_weighted_mean_and_replays_count_once(coordinator, tmp_path):
    # Prepare
    nodes = approved_nodes(coordinator, 3)
    operator = coordinator.operator_token()
    base = model_list(coordinator, operator)[0]
    plan = publish_via_api(coordinator, operator, plan_json(base["sha256"], min_nodes=3))
    joined = [node.join(plan["plan_sha256"]) for node in nodes]
    assert {j["round_id"] for j in joined} == {joined[0]["round_id"]} and joined[0]["state"] == "open"
    round_id = joined[0]["round_id"]
    weights = nodes[0].download(joined[0]["model_version"])
    updates = [dyadic_update(weights, seed) for seed in range(3)]
    counts = [1, 2, 5]

    # Execute: node 0 uploads, then retries the same upload twice (lost responses); node 0 also tries to swap.
    first = nodes[0].upload(round_id, updates[0], counts[0])
    assert first.status_code == 200 and first.json()["counted"] is True
    for _ in range(2):
        replay = nodes[0].upload(round_id, updates[0], counts[0])
        assert replay.status_code == 200 and replay.json()["counted"] is False
    swap = nodes[0].upload(round_id, updates[1], counts[0])
    assert swap.status_code == 409 and "only the first one counts" in swap.json()["message"]
    assert nodes[1].get(f"/rounds/{round_id}").json()["updates_received"] == 1
    nodes[1].upload(round_id, updates[1], counts[1])
    last = nodes[2].upload(round_id, updates[2], counts[2])

    # Assert: the round completed with exactly Σ nᵢwᵢ / Σ nᵢ, and lineage says how many, not who.
    assert last.json()["round_state"] == "complete"
    status = nodes[0].get(f"/rounds/{round_id}").json()
    assert status["state"] == "complete" and status["updates_received"] == 3
    new = model_list(coordinator, operator)[-1]
    assert new["version"] == status["result_version"]
    assert (new["parent_version"], new["contributors"], new["plan_sha256"]) == (1, 3, plan["plan_sha256"])
    assert not any("node" in key for key in new)
    aggregated = nodes[1].download(new["version"])
    expected = weighted_mean(updates, counts)
    assert aggregated.keys() == expected.keys()
    for name in expected:
        np.testing.assert_array_equal(aggregated[name], expected[name])
    # Individual updates are gone from the blob store: only the two model versions remain.
    assert _blob_count(coordinator.directory) == 2
    after = nodes[2].upload(round_id, updates[2], counts[2])
    assert after.status_code == 200 and after.json()["counted"] is False

    # The operator can export the new version as a bundle that loads with its sha256 checked.
    out = tmp_path / "exported"
    coordinator_cli("models", "export", coordinator.directory, str(new["version"]), out)
    bundle = load_bundle(out)
    assert bundle.card.training["federated"]["contributors"] == 3
    rounds = json.loads(coordinator_cli("rounds", "status", coordinator.directory).stdout)
    assert [r["state"] for r in rounds] == ["complete"]


@on_both_databases
def test_long_poll_answers_when_the_round_changes_not_at_the_timeout(coordinator):
    nodes = approved_nodes(coordinator, 2)
    operator = coordinator.operator_token()
    base = model_list(coordinator, operator)[0]
    plan = publish_via_api(coordinator, operator, plan_json(base["sha256"], min_nodes=2))["plan_sha256"]
    info = nodes[0].join(plan)
    weights = nodes[0].download(info["model_version"])

    # Nothing changes: the poll returns unchanged at its (short) timeout.
    quiet = nodes[1].get(f"/plans/{plan}/wait", params={"since": info["revision"], "timeout": 0.5}).json()
    assert quiet["changed"] is False and quiet["round"]["revision"] == info["revision"]

    answers: list[tuple[float, dict]] = []

    def poll() -> None:
        response = nodes[1].get(f"/plans/{plan}/wait", params={"since": info["revision"], "timeout": 30})
        answers.append((time.monotonic(), response.json()))

    waiter = threading.Thread(target=poll)
    waiter.start()
    # The poll is registered once its request is in flight; an upload then changes the round.
    uploaded = time.monotonic()
    nodes[0].upload(info["round_id"], dyadic_update(weights, 1), 4)
    waiter.join(timeout=40)
    (answered, body), = answers
    assert body["changed"] is True and body["round"]["revision"] != info["revision"]
    assert (body["round"]["state"], body["round"]["updates_received"]) == ("collecting", 1)
    assert answered - uploaded < 10, "the long poll should answer on the change, not at its 30 s timeout"

    # After the plan's only round completes, the poll reports the plan finished.
    nodes[1].upload(info["round_id"], dyadic_update(weights, 2), 4)
    done = nodes[0].get(f"/plans/{plan}/wait", params={"since": body["round"]["revision"], "timeout": 30}).json()
    assert done["changed"] is True and done["plan_status"] == "finished" and done["round"] is None


def test_long_poll_until_round_end_is_not_woken_by_other_nodes_updates(coordinator):
    nodes = approved_nodes(coordinator, 3)
    operator = coordinator.operator_token()
    base = model_list(coordinator, operator)[0]
    plan = publish_via_api(coordinator, operator, plan_json(base["sha256"], min_nodes=3, rounds=2))["plan_sha256"]
    info = nodes[0].join(plan)
    weights = nodes[0].download(info["model_version"])
    nodes[0].upload(info["round_id"], dyadic_update(weights, 1), 4)  # counted: the round's revision changed
    wait = f"/plans/{plan}/wait"

    # A plain poll answers at once; with until=round_end the same poll waits (here to its 1 s timeout).
    plain = nodes[1].get(wait, params={"since": info["revision"], "timeout": 30}).json()
    assert plain["changed"] is True and plain["round"]["updates_received"] == 1
    started = time.monotonic()
    quiet = nodes[1].get(wait, params={"since": info["revision"], "until": "round_end", "timeout": 1}).json()
    assert time.monotonic() - started >= 0.9
    assert quiet["changed"] is True and (quiet["round"]["round_id"], quiet["round"]["state"]) == (
        info["round_id"], "collecting")

    # It answers when the round is over: the next round is current.
    answers: list[tuple[float, dict]] = []

    def poll() -> None:
        response = nodes[0].get(wait, params={"since": info["revision"], "until": "round_end", "timeout": 30})
        answers.append((time.monotonic(), response.json()))

    waiter = threading.Thread(target=poll)
    waiter.start()
    nodes[1].upload(info["round_id"], dyadic_update(weights, 2), 4)
    closed = time.monotonic()
    nodes[2].upload(info["round_id"], dyadic_update(weights, 3), 8)
    waiter.join(timeout=40)
    (answered, body), = answers
    assert body["changed"] is True and (body["round"]["number"], body["round"]["state"]) == (2, "open")
    assert answered - closed < 10
    bad = nodes[0].get(wait, params={"since": info["revision"], "until": "sometimes"})
    assert bad.status_code == 422 and bad.json()["error"] == "invalid_input"


def test_consecutive_rounds_each_give_exactly_their_own_weighted_mean(coordinator):
    """Upload buffers are reused from round to round: no round may see another round's bytes."""
    nodes = approved_nodes(coordinator, 2)
    operator = coordinator.operator_token()
    base = model_list(coordinator, operator)[0]
    plan = publish_via_api(coordinator, operator, plan_json(base["sha256"], min_nodes=2, rounds=3))
    counts = [3, 1]
    for number in range(1, 4):
        joined = [node.join(plan["plan_sha256"]) for node in nodes]
        assert joined[0]["number"] == number
        weights = nodes[0].download(joined[0]["model_version"])
        updates = [dyadic_update(weights, 10 * number + i) for i in range(2)]
        receipts = [node.upload(joined[0]["round_id"], update, count).json()
                    for node, update, count in zip(nodes, updates, counts, strict=True)]
        assert receipts[-1]["round_state"] == "complete"
        result = nodes[1].download(model_list(coordinator, operator)[-1]["version"])
        expected = weighted_mean(updates, counts)
        for name in expected:
            np.testing.assert_array_equal(result[name], expected[name])
