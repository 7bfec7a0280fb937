"""Secure aggregation cost per round against the plain round, simulated in process (every message encoded).

For n nodes and a P-parameter update: compute seconds per node and for the coordinator, and bytes per node (all
messages, both directions) against the plain round (node: a float32 safetensors update; coordinator: parsing and
FedAvg of n of them). "added" = secure − plain. Nodes compute in parallel in a real round, so a round's added latency
is about one node's added time plus the coordinator's ("coordinator_finish_s" is the part after the last unmasking
answer; the rest — adding masked inputs to a running sum — happens while uploads arrive). Prints JSON; medians of
repeated runs.

    .venv/bin/python benchmarks/secagg.py [--params 11000000] [--nodes 3 10 30] [--repeats 3] [--round-params 1100000]

With ``--https``: whole rounds against a real coordinator (``pneumodesk-coordinator serve``, uvicorn over TLS on
127.0.0.1) — a secure round (every phase, nodes in threads, phase changes learnt by long poll) against a plain round
(upload + FedAvg) of the same update size, from the first message to the published model (local training excluded),
with the bytes each node sent and received. Nodes and coordinator share this machine's cores, so the wall times are
an upper bound for nodes on their own machines.

    .venv/bin/python benchmarks/secagg.py --https [--nodes 3 10] [--round-params 1100000] [--repeats 2]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import numpy as np

from pneumodesk.federation import FedAvgAccumulator, state_dict_from_bytes, state_dict_to_bytes
from pneumodesk.federation.secagg import QuantisationSpec
from pneumodesk.federation.secagg.simulation import simulate_round

CLIP, MAX_EXAMPLES = 1.0, 10_000
MODEL = {"architecture": "pneumonet-m", "input_size": 224}  # the card of random_bundle's model
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def updates_for(nodes: int, params: int) -> tuple[dict[str, np.ndarray], dict[str, int]]:
    """Three distinct random float32 deltas shared round-robin (memory stays bounded at n = 30)."""
    rng = np.random.default_rng(nodes)
    distinct = [rng.uniform(-0.05, 0.05, params).astype(np.float32) for _ in range(min(3, nodes))]
    ids = [f"node-{i:02d}" for i in range(nodes)]
    return ({node: distinct[i % len(distinct)] for i, node in enumerate(ids)},
            {node: int(rng.integers(100, MAX_EXAMPLES)) for node in ids})


def plain_costs(updates: dict[str, np.ndarray], examples: dict[str, int]) -> dict[str, float]:
    """A plain round's compute: each node serialises its update; the coordinator parses and averages all of them."""
    node_times, blobs = [], []
    for node, update in updates.items():
        started = time.perf_counter()
        blobs.append((state_dict_to_bytes({"update": update}), examples[node]))
        node_times.append(time.perf_counter() - started)
    started = time.perf_counter()
    accumulator = FedAvgAccumulator()
    for blob, count in blobs:
        accumulator.add(state_dict_from_bytes(blob), count)
    accumulator.result()
    return {"node_s": statistics.median(node_times), "coordinator_s": time.perf_counter() - started,
            "bytes_per_node": len(blobs[0][0])}


def secure_costs(updates: dict[str, np.ndarray], examples: dict[str, int], spec: QuantisationSpec,
                 drop_after_masking: int = 0) -> dict[str, float]:
    dropped = set(sorted(updates)[-drop_after_masking:]) if drop_after_masking else set()
    started = time.perf_counter()
    result, costs = simulate_round(updates, examples, spec, drop_after_masking=dropped)
    wall = time.perf_counter() - started
    expected = sum(updates[n].astype(np.float64) * examples[n] for n in updates) / sum(examples.values())
    error = float(np.max(np.abs(result.mean - expected)))
    assert error <= spec.error_bound + 1e-9, error
    answering = [node for node in updates if node not in dropped]
    return {"node_s": statistics.median(costs.node_seconds[n] for n in answering),
            "node_max_s": max(costs.node_seconds[n] for n in answering),
            "coordinator_s": costs.server_seconds, "coordinator_finish_s": costs.server_finish_seconds,
            "bytes_sent_per_node": statistics.median(costs.bytes_sent[n] for n in answering),
            "bytes_received_per_node": statistics.median(costs.bytes_received[n] for n in answering),
            "wall_s": wall, "max_error": error}


def median_of(rows: list[dict[str, float]]) -> dict[str, float]:
    return {key: statistics.median(row[key] for row in rows) if key == "max_error"
            else round(statistics.median(row[key] for row in rows), 4) for key in rows[0]}


def _threads(work, count: int) -> list:  # type: ignore[no-untyped-def]
    results: list = [None] * count
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            results[index] = work(index)
        except BaseException as error:  # reported after join
            errors.append(error)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results


def https_rounds(node_counts: list[int], params: int, repeats: int) -> dict[str, object]:
    """Secure vs plain whole rounds over TLS against a real coordinator (see the module docstring)."""
    from pneumodesk.federation.secagg.vector import flatten_state
    from pneumodesk.federation.tensors import state_dict_to_bytes
    from tests.e2e.coordinator_harness import (
        Coordinator,
        approved_nodes,
        init_coordinator,
        model_list,
        plan_json,
        publish_via_api,
        random_bundle,
    )
    from tests.e2e.secure_harness import SecureNode, audience, secure_plan_json

    rows = []
    with tempfile.TemporaryDirectory() as temporary:
        root = Path(temporary)
        random_bundle(root / "bundle", params)
        coordinator = Coordinator(init_coordinator(root / "coordinator", root / "bundle")).start()
        try:
            operator = coordinator.operator_token()
            base_info = model_list(coordinator, operator)[0]
            nodes = approved_nodes(coordinator, max(node_counts))
            base = nodes[0].download(1)
            base_vector, _ = flatten_state(base)
            rng = np.random.default_rng(0)
            local = {name: (array + rng.normal(0, 0.01, array.shape)).astype(array.dtype)
                     for name, array in base.items()}
            delta = flatten_state(local)[0] - base_vector
            body = state_dict_to_bytes(local)
            fed = audience(coordinator)
            for count in node_counts:
                plain_runs, secure_runs = [], []
                for _ in range(repeats):
                    text = json.loads(plan_json(base_info["sha256"], min_nodes=count, **MODEL))
                    text["name"] = f"plain {uuid.uuid4()}"
                    sha = publish_via_api(coordinator, operator, json.dumps(text))["plan_sha256"]
                    round_id = nodes[0].join(sha)["round_id"]
                    started = time.perf_counter()
                    _threads(lambda i, r=round_id, b=body: nodes[i].upload_bytes(r, b, 100 + i), count)
                    _wait_complete(nodes[0], round_id)
                    plain_runs.append({"wall_s": time.perf_counter() - started, "bytes_sent_per_node": len(body)})

                    sha = publish_via_api(coordinator, operator, secure_plan_json(
                        base_info["sha256"], min_nodes=count, name=f"secure {uuid.uuid4()}", **MODEL))["plan_sha256"]
                    round_id = nodes[0].join(sha)["round_id"]
                    started = time.perf_counter()
                    measured = _threads(lambda i, r=round_id, s=sha: _secure_node(
                        SecureNode(nodes[i], s, r, fed), delta, 100 + i), count)
                    _wait_complete(nodes[0], round_id)
                    finish = re.findall(r"unmasked in ([0-9.]+) s", coordinator.log.read_text(errors="replace"))
                    secure_runs.append({
                        "coordinator_finish_s": float(finish[-1]) if finish else float("nan"),
                        "wall_s": time.perf_counter() - started,
                        "node_compute_s": statistics.median(m["compute_s"] for m in measured),
                        "bytes_sent_per_node": statistics.median(m["sent"] for m in measured),
                        "bytes_received_per_node": statistics.median(m["received"] for m in measured),
                    })
                plain, secure = median_of(plain_runs), median_of(secure_runs)
                row = {"nodes": count, "params": params, "repeats": repeats, "plain": plain, "secure": secure,
                       "added_round_s": round(secure["wall_s"] - plain["wall_s"], 3),
                       "bytes_sent_ratio": round(secure["bytes_sent_per_node"] / plain["bytes_sent_per_node"], 4)}
                rows.append(row)
                print(json.dumps(row), file=sys.stderr)
        finally:
            coordinator.stop()
    return {"mode": "https", "cpu_count": os.cpu_count(), "rows": rows,
            "note": "download of the model and local training excluded; nodes run as threads of one process"}


def _wait_complete(node, round_id: int, timeout: float = 600.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = node.get(f"/rounds/{round_id}").json()
        if info["state"] in ("complete", "failed"):
            if info["state"] == "failed":
                raise RuntimeError(f"round failed: {info['reason']}")
            return
        time.sleep(0.01)  # polling with a deadline
    raise TimeoutError("the round did not complete")


def _secure_node(node, delta: np.ndarray, examples: int) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """One node's whole secure exchange; phase changes are learnt by the plan's long poll."""
    from pneumodesk.federation.secagg import ShareDelivery, SurvivorList, UnmaskRequest
    from pneumodesk.federation.secagg.wire import SecureRoster

    http, url, headers = node.node.http, node.node.coordinator.url, node.node.headers()
    counters = {"compute_s": 0.0, "sent": 0, "received": 0}

    def timed(work):  # type: ignore[no-untyped-def]
        started = time.perf_counter()
        value = work()
        counters["compute_s"] += time.perf_counter() - started
        return value

    def request(method: str, endpoint: str, body: bytes | None = None, **extra: str):  # type: ignore[no-untyped-def]
        response = http.request(method, node._url(endpoint), data=body, timeout=300,
                                headers={**headers, "Content-Type": "application/json", **extra})
        counters["sent"] += len(body or b"")
        counters["received"] += len(response.content)
        if response.status_code == 409 and endpoint.startswith(("unmask", "consistency")):
            return None  # the phase closed before this answer: the round needs nothing more from this node
        if response.status_code != 200:
            raise RuntimeError(response.text)
        return response

    def wait(phase: str) -> None:
        since = None
        while True:
            info = http.get(f"{url}/rounds/{node.round_id}", headers=headers, timeout=60).json()
            if info["phase"] == phase or info["state"] in ("aggregating", "complete", "failed"):
                return
            if since == info["revision"]:
                continue
            since = info["revision"]
            http.get(f"{url}/plans/{info['plan_sha256']}/wait", params={"since": since, "timeout": 30},
                     headers=headers, timeout=60)

    from pneumodesk.federation.messages import SHA256_HEADER
    from pneumodesk.federation.tensors import sha256_hex

    request("POST", "advertisement", node.protocol.advertisement.model_dump_json().encode())
    wait("share_keys")
    roster = SecureRoster.model_validate_json(request("GET", "roster").content)
    shares = timed(lambda: node.protocol.share_keys(roster.roster, roster.identity_keys))
    request("POST", "shares", shares.model_dump_json().encode())
    wait("masked_input")
    delivery = ShareDelivery.model_validate_json(request("GET", "delivery").content)
    masked = timed(lambda: node.protocol.masked_input(delivery, delta, examples).to_bytes())
    request("PUT", "update", masked, **{SHA256_HEADER: sha256_hex(masked), "Content-Type": "application/octet-stream"})
    wait("consistency_check")
    info = http.get(f"{url}/rounds/{node.round_id}", headers=headers, timeout=60).json()
    confirmed = None
    if info["state"] == "collecting" and info["phase"] == "consistency_check":
        survivors = SurvivorList.model_validate_json(request("GET", "survivors").content)
        signature = timed(lambda: node.protocol.confirm_survivors(survivors, node.node.key))
        confirmed = request("POST", "consistency", signature.model_dump_json().encode())
    wait("unmasking")
    info = http.get(f"{url}/rounds/{node.round_id}", headers=headers, timeout=60).json()
    if confirmed is not None and info["state"] == "collecting":
        answer = request("GET", "unmask-request")
        if answer is not None:
            unmask = UnmaskRequest.model_validate_json(answer.content)
            reply = timed(lambda: node.protocol.unmask(unmask))
            request("POST", "unmask", reply.model_dump_json().encode())
    return counters


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--params", type=int, default=11_000_000)
    parser.add_argument("--nodes", type=int, nargs="+", default=[3, 10, 30])
    parser.add_argument("--repeats", type=int, default=3, help="per node count; n ≥ 30 runs once (slow in process)")
    parser.add_argument("--round-params", type=int, default=1_100_000, help="whole secure round at n = 10")
    parser.add_argument("--https", action="store_true", help="whole rounds against a real coordinator over TLS")
    args = parser.parse_args()
    if args.https:
        print(json.dumps(https_rounds(args.nodes, args.round_params, args.repeats), indent=2))
        return 0

    report: dict[str, object] = {"params": args.params, "cpu_count": os.cpu_count(), "clip": CLIP,
                                 "max_examples": MAX_EXAMPLES, "rows": []}
    for nodes in args.nodes:
        spec = QuantisationSpec.for_round(max_nodes=nodes, clip=CLIP, max_examples=MAX_EXAMPLES)
        updates, examples = updates_for(nodes, args.params)
        repeats = 1 if nodes >= 30 else args.repeats
        plain = median_of([plain_costs(updates, examples) for _ in range(repeats)])
        secure = median_of([secure_costs(updates, examples, spec) for _ in range(repeats)])
        row = {
            "nodes": nodes, "repeats": repeats, "word_bits": spec.word_bits, "fraction_bits": spec.fraction_bits,
            "error_bound": spec.error_bound, "plain": plain, "secure": secure,
            "added_node_s": round(secure["node_s"] - plain["node_s"], 3),
            "added_coordinator_s": round(secure["coordinator_s"] - plain["coordinator_s"], 3),
            "added_round_latency_s": round(secure["node_max_s"] - plain["node_s"]
                                           + secure["coordinator_s"] - plain["coordinator_s"], 3),
            "bytes_ratio_sent": round(secure["bytes_sent_per_node"] / plain["bytes_per_node"], 4),
            "bytes_ratio_all": round((secure["bytes_sent_per_node"] + secure["bytes_received_per_node"])
                                     / plain["bytes_per_node"], 4),
        }
        report["rows"].append(row)  # type: ignore[union-attr]
        print(json.dumps(row), file=sys.stderr)
        del updates

    spec = QuantisationSpec.for_round(max_nodes=10, clip=CLIP, max_examples=MAX_EXAMPLES)
    updates, examples = updates_for(10, args.round_params)
    whole = [secure_costs(updates, examples, spec, drop_after_masking=1)["wall_s"] for _ in range(args.repeats)]
    report["whole_round_n10"] = {"params": args.round_params, "one_node_drops_after_masking": True,
                                 "wall_s_median": round(statistics.median(whole), 3),
                                 "note": "all 10 nodes and the coordinator computed one after another on this machine"}
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
