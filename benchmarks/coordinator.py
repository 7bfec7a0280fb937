"""Federation round overhead on this machine: everything but local training, for 3, 10 and 30 nodes and an
11 M-parameter model, against a real coordinator (uvicorn over TLS on 127.0.0.1, its own CA).

Per round and node: learn that the round is open (long poll), download the model, upload an update; the coordinator
aggregates (FedAvg) when the last update arrives and publishes the new version; every node learns of it by long poll.
Reported per node count (medians over rounds): download, upload (incl. the aggregation triggered by the last
upload), aggregate (the coordinator's own timing, from its log), publish→all nodes notified, and the whole overhead;
plus one local training epoch of the default architecture on 500 images at its input size, measured in the same run,
and the ratios overhead/epoch and overhead/(epoch + overhead), using the fastest of three epochs. Prints JSON.

All simulated nodes share this machine's cores with the coordinator, so client-side work (serialising and sending
N updates) is counted here although real nodes do it in parallel on their own machines: an upper bound.

    .venv/bin/python benchmarks/coordinator.py [--nodes 3 10 30] [--rounds 3] [--parameters 11000000]
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pneumodesk.federation.tensors import state_dict_to_bytes
from pneumodesk.model import ModelBundle, build_model, load_bundle
from pneumodesk.model.default import default_bundle_path
from tests.e2e.coordinator_harness import (
    Coordinator,
    approved_nodes,
    init_coordinator,
    model_list,
    plan_json,
    publish_via_api,
)


def big_bundle(directory: Path, parameters: int) -> ModelBundle:
    """A bundle with ``parameters`` random float32 weights (11 tensors); the coordinator never builds the network."""
    card = load_bundle(default_bundle_path()).card
    generator = torch.Generator().manual_seed(0)
    sizes = [parameters // 11] * 10 + [parameters - 10 * (parameters // 11)]
    state = {f"layer{i}.weight": torch.randn(n, generator=generator) * 0.01 for i, n in enumerate(sizes)}
    bundle = ModelBundle(card.with_updates(parameters=parameters), state)
    bundle.save(directory)
    return bundle


def local_epoch_seconds(images: int = 500, batch_size: int = 32) -> float:
    """One epoch of the default architecture at its input size (random grey images, AdamW, log loss)."""
    card = load_bundle(default_bundle_path()).card
    model = build_model(card.architecture).train()
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-3)
    inputs = torch.randn(images, 1, card.input_size, card.input_size)
    labels = torch.randint(0, 2, (images, 1)).float()
    loss_fn = torch.nn.BCEWithLogitsLoss()
    started = time.perf_counter()
    for start in range(0, images, batch_size):
        optimiser.zero_grad()
        loss = loss_fn(model(inputs[start : start + batch_size]), labels[start : start + batch_size])
        loss.backward()
        optimiser.step()
    return time.perf_counter() - started


def _upload(node, info: dict, payload: bytes, index: int) -> float:
    response = node.upload_bytes(info["round_id"], payload, 100 + index)
    assert response.status_code == 200, response.text
    return time.perf_counter()


def _learn_result(node, info: dict, plan_sha: str, number: int) -> float:
    """Long-poll until the plan moved past round ``number``; returns when this node knew."""
    since = info["revision"]
    while True:
        answer = node.get(f"/plans/{plan_sha}/wait", params={"since": since, "timeout": 60}).json()
        current = answer["round"]
        if answer["plan_status"] == "finished" or (current and current["number"] > number):
            return time.perf_counter()
        since = current["revision"]


def run_rounds(coordinator: Coordinator, nodes, payloads: list[bytes], plan_sha: str, rounds: int) -> list[dict]:
    """Drive ``rounds`` rounds with every node; returns per-round phase timings (seconds)."""
    results = []
    pool = ThreadPoolExecutor(len(nodes))
    opened = time.perf_counter()  # round 1 opened at publication, just before this call
    for number in range(1, rounds + 1):
        infos = list(pool.map(lambda n: n.join(plan_sha), nodes))
        assert {i["number"] for i in infos} == {number}, infos
        list(pool.map(lambda pair: pair[0].download(pair[1]["model_version"]), zip(nodes, infos, strict=True)))
        downloaded = time.perf_counter()

        uploaded = max(pool.map(_upload, nodes, infos, payloads[: len(nodes)], range(len(nodes))))
        notified = max(pool.map(_learn_result, nodes, infos, [plan_sha] * len(nodes), [number] * len(nodes)))
        results.append({"download_s": downloaded - opened, "upload_s": uploaded - downloaded,
                        "publish_notify_s": notified - uploaded, "overhead_s": notified - opened})
        opened = notified
    pool.shutdown()
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, nargs="+", default=[3, 10, 30])
    parser.add_argument("--rounds", type=int, default=3, help="rounds per node count (medians over them)")
    parser.add_argument("--parameters", type=int, default=11_000_000)
    args = parser.parse_args()

    # The fastest of three epochs: this machine's cores are shared, and a slower epoch would flatter the ratios.
    epochs = [local_epoch_seconds() for _ in range(3)]
    epoch = min(epochs)
    report: dict[str, object] = {"parameters": args.parameters, "update_mb": round(args.parameters * 4 / 1e6, 1),
                                 "local_epoch_500_images_s": round(epoch, 3),
                                 "local_epoch_runs_s": [round(e, 3) for e in epochs], "rounds_per_size": args.rounds,
                                 "nodes": {}}
    with tempfile.TemporaryDirectory() as temporary:
        root = Path(temporary)
        big_bundle(root / "bundle", args.parameters)
        coordinator = Coordinator(init_coordinator(root / "coordinator", root / "bundle")).start()
        try:
            all_nodes = approved_nodes(coordinator, max(args.nodes))
            operator = coordinator.operator_token()
            base = model_list(coordinator, operator)[0]
            rng = np.random.default_rng(1)
            sizes = [args.parameters // 11] * 10 + [args.parameters - 10 * (args.parameters // 11)]
            payloads = [state_dict_to_bytes({f"layer{i}.weight": (rng.standard_normal(n) * 0.01).astype(np.float32)
                                             for i, n in enumerate(sizes)}) for _ in range(max(args.nodes))]
            for count in args.nodes:
                log_mark = coordinator.log.stat().st_size
                plan = json.loads(plan_json(base["sha256"], min_nodes=count, rounds=args.rounds,
                                            architecture="pneumonet-m", input_size=224))
                plan["name"] = f"benchmark {count} nodes"
                summary = publish_via_api(coordinator, operator, json.dumps(plan))
                timings = run_rounds(coordinator, all_nodes[:count], payloads, summary["plan_sha256"], args.rounds)
                with coordinator.log.open("rb") as log:
                    log.seek(log_mark)
                    aggregate = [float(s) for s in re.findall(rb"aggregated in ([0-9.]+) s", log.read())]
                row = {key: round(statistics.median(t[key] for t in timings), 3) for key in timings[0]}
                row["aggregate_s"] = round(statistics.median(aggregate), 3) if aggregate else None
                row["overhead_per_epoch"] = round(row["overhead_s"] / epoch, 3)
                row["overhead_share_of_round"] = round(row["overhead_s"] / (row["overhead_s"] + epoch), 3)
                report["nodes"][str(count)] = row
                print(json.dumps({count: row}), file=sys.stderr)
        finally:
            coordinator.stop()
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
