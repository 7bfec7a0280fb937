"""Federation round overhead on this machine: everything but local training, for 3, 10 and 30 nodes and an
11 M-parameter model, against a real coordinator (``pneumodesk-coordinator serve``: uvicorn over TLS on 127.0.0.1,
its own CA).

The model is a real 11 M-parameter network: ResNet-18 (torchvision) with GroupNorm, one input channel and one output,
11,170,753 parameters in 62 tensors — its weights are what the coordinator serves and the nodes send back. Per round
and node: join, download the model (sha256 checked, parsed), wait until every node has it (their local training would
happen here), upload an update, then learn by long poll that the round closed. The coordinator counts each upload at
once into the round's running sum, so the last upload only divides and publishes. Reported per node count (medians
over rounds, seconds): download, upload (incl. the aggregation the last upload triggers), aggregate (the
coordinator's own timing, from its log), publish→all nodes notified, the whole overhead, and the coordinator's own CPU
seconds per round (from /proc: a figure the machine's other load hardly changes), with the part spent in the kernel
(copying into the page cache, zeroing fresh memory: large and variable on a virtual machine).

"Such a round" is that overhead plus one local training epoch of the same network on 500 images at 224 px (random
grey images, AdamW, batch 32), measured in the same run (the fastest of the runs, which makes the ratios
conservative): ``overhead_share_of_round`` = overhead / (epoch + overhead) is the figure the 10 % target is about.
The shipped default model (pneumonet-m, 1.5 M parameters) trains an epoch several times faster; its ratio is reported
too (``..._default_model_epoch``), as if that small model's round moved the 11 M model's bytes — a stricter bound.

Simulated nodes run in separate worker processes (threads inside them), so their client-side work does not serialise
on one interpreter lock; they still share this machine's cores with the coordinator, so the wall-clock figures are an
upper bound for nodes on their own machines (where the coordinator's CPU seconds per round are the part that grows
with the node count). Prints JSON (the full report on stdout, one line per node count on stderr).

``--coordinators`` picks the coordinators measured in the same run, all started at once and measured in turn for
each node count (so a drift in the machine's load touches them alike), with the same model: ``sqlite-1`` (the
default: SQLite, ``serve`` in one process) and ``postgresql-N`` (a real PostgreSQL server started for the run with
``pgserver``, ``serve --workers N``; each node keeps its connection alive as a real node does, and the kernel hands
every new connection to whichever worker accepts it). With several workers the coordinator's CPU is the
supervisor's and every worker's; on PostgreSQL the database server's CPU per round is reported beside it
(``database_cpu_s``: SQLite's work is inside the coordinator's figure). ``--epoch-runs 0`` skips the epochs.

    .venv/bin/python benchmarks/coordinator.py [--nodes 3 10 30] [--rounds 5] [--epoch-runs 4] [--workers CPU_COUNT]
                                               [--coordinators sqlite-1 postgresql-2]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing as mp
import os
import re
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def eleven_million_network():
    """ResNet-18 with GroupNorm (as PneumoDesk's networks use, for DP), one grey input channel, one logit."""
    import torch
    import torchvision

    network = torchvision.models.resnet18(num_classes=1, norm_layer=lambda channels: torch.nn.GroupNorm(32, channels))
    network.conv1 = torch.nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)
    return network


def weight_layout() -> dict[str, tuple[int, ...]]:
    """name → shape of the benchmark network's weights."""
    return {name: tuple(tensor.shape) for name, tensor in eleven_million_network().state_dict().items()}


def network_bundle(directory: Path):
    """A bundle holding the benchmark network's weights; the coordinator never builds the network."""
    import torch

    from pneumodesk.model import ModelBundle, load_bundle
    from pneumodesk.model.default import default_bundle_path

    card = load_bundle(default_bundle_path()).card
    torch.manual_seed(0)
    state = eleven_million_network().state_dict()
    bundle = ModelBundle(card.with_updates(parameters=sum(t.numel() for t in state.values())), state)
    bundle.save(directory)
    return bundle


def local_epoch_seconds(network, input_size: int = 224, images: int = 500, batch_size: int = 32) -> float:
    """One epoch of ``network`` (random grey images, AdamW, log loss)."""
    import torch

    network = network.train()
    optimiser = torch.optim.AdamW(network.parameters(), lr=1e-3)
    inputs = torch.randn(images, 1, input_size, input_size)
    labels = torch.randint(0, 2, (images, 1)).float()
    loss_fn = torch.nn.BCEWithLogitsLoss()
    started = time.perf_counter()
    for start in range(0, images, batch_size):
        optimiser.zero_grad()
        loss = loss_fn(network(inputs[start : start + batch_size]), labels[start : start + batch_size])
        loss.backward()
        optimiser.step()
    return time.perf_counter() - started


def default_model_network():
    from pneumodesk.model import build_model, load_bundle
    from pneumodesk.model.default import default_bundle_path

    return build_model(load_bundle(default_bundle_path()).card.architecture)


# -- simulated nodes, in worker processes ----------------------------------------------------------------------------


def _node_worker(directory: str, port: int, nodes: list[dict], layout: dict[str, tuple[int, ...]], plan_sha: str,
                 rounds: int, barrier, results) -> None:
    """Run every round for ``nodes`` (one thread each); put (node, round, downloaded, uploaded, notified) times."""
    sys.path.insert(0, str(ROOT))
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    from pneumodesk.federation.tensors import state_dict_to_bytes
    from tests.e2e.coordinator_harness import Coordinator, SimulatedNode

    coordinator = Coordinator.__new__(Coordinator)
    coordinator.directory, coordinator.port = Path(directory), port
    coordinator.ca, coordinator._sessions = Path(directory) / "tls" / "ca.pem", []

    def simulate(spec: dict) -> None:
        node = SimulatedNode(coordinator, spec["name"])
        node.key = load_pem_private_key(spec["key"], None)
        node.node_id = spec["node_id"]
        assert node.request_token().status_code == 200  # a fresh token: runs may outlast the first one
        rng = np.random.default_rng(spec["index"])
        payload = state_dict_to_bytes({name: (rng.standard_normal(shape) * 0.01).astype(np.float32)
                                       for name, shape in layout.items()})
        barrier.wait()  # payloads ready everywhere: round 1 starts now
        for number in range(1, rounds + 1):
            info = node.join(plan_sha)
            assert info["number"] == number, info
            node.download(info["model_version"])  # sha256 checked and parsed, as a node does
            downloaded = time.perf_counter()
            barrier.wait()  # every node has the model: local training would run here
            response = node.upload_bytes(info["round_id"], payload, 100 + spec["index"])
            assert response.status_code == 200, response.text
            uploaded = time.perf_counter()
            notified = _learn_result(node, info, plan_sha, number)
            results.put((spec["index"], number, downloaded, uploaded, notified))
            barrier.wait()  # the next round starts when every node knows this one closed

    threads = [threading.Thread(target=simulate, args=(spec,)) for spec in nodes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def _learn_result(node, info: dict, plan_sha: str, number: int) -> float:
    """Long-poll (``until=round_end``: not woken by other nodes' uploads) until the plan moved past round ``number``;
    returns when this node knew."""
    since = info["revision"]
    while True:
        answer = node.get(f"/plans/{plan_sha}/wait",
                          params={"since": since, "until": "round_end", "timeout": 60}).json()
        current = answer["round"]
        if answer["plan_status"] == "finished" or (current and current["number"] > number):
            return time.perf_counter()
        since = current["revision"]


def _cpu_seconds(pid: int | None) -> tuple[float, float]:
    """(user, kernel) CPU seconds the process and its children (workers, database backends) have used so far: its
    own, its ended children's (counted in its own figures once it reaped them) and its live children's."""
    import psutil

    if pid is None:
        return 0.0, 0.0
    root = psutil.Process(pid)
    own = root.cpu_times()
    user, kernel = own.user + own.children_user, own.system + own.children_system
    for child in root.children():
        try:
            times = child.cpu_times()
        except psutil.Error:  # ended meanwhile (a database backend closing): it is lost to this sample alone
            continue
        user, kernel = user + times.user, kernel + times.system
    return user, kernel


def run_rounds(coordinator, nodes, layout: dict[str, tuple[int, ...]], plan_sha: str, rounds: int,
               workers: int, database_pid: int | None = None) -> list[dict]:
    """Drive ``rounds`` rounds with every node in ``workers`` processes; per-round phase timings (seconds)."""
    from cryptography.hazmat.primitives import serialization

    context = mp.get_context("spawn")
    barrier, results = context.Barrier(len(nodes) + 1), context.Queue()
    specs = [{"index": i, "name": n.name, "node_id": n.node_id,
              "key": n.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                         serialization.NoEncryption())} for i, n in enumerate(nodes)]
    processes = [context.Process(target=_node_worker, args=(
        str(coordinator.directory), coordinator.port, specs[w::workers], layout, plan_sha, rounds, barrier,
        results)) for w in range(min(workers, len(nodes)))]
    for process in processes:
        process.start()
    barrier.wait(timeout=600)
    opened = time.perf_counter()
    cpu = [_cpu_seconds(coordinator.process.pid)]
    database_cpu = [_cpu_seconds(database_pid)]
    timings = []
    for _number in range(rounds):
        barrier.wait(timeout=600)  # downloads done
        barrier.wait(timeout=600)  # every node learnt that the round closed; the next round starts now
        released = time.perf_counter()
        cpu.append(_cpu_seconds(coordinator.process.pid))
        database_cpu.append(_cpu_seconds(database_pid))
        rows = [results.get(timeout=60) for _ in nodes]
        downloaded, uploaded, notified = (max(row[k] for row in rows) for k in (2, 3, 4))
        timings.append({"download_s": downloaded - opened, "upload_s": uploaded - downloaded,
                        "publish_notify_s": notified - uploaded, "overhead_s": notified - opened,
                        "coordinator_cpu_s": sum(cpu[-1]) - sum(cpu[-2]),
                        "coordinator_kernel_cpu_s": cpu[-1][1] - cpu[-2][1],
                        "database_cpu_s": sum(database_cpu[-1]) - sum(database_cpu[-2])})
        opened = released
    for process in processes:
        process.join(timeout=60)
    return timings


class Measured:
    """One coordinator under test, started with its nodes enrolled and approved; ``measure`` runs one node count."""

    def __init__(self, label: str, directory: Path, bundle: Path, database_url: str, coordinator_workers: int,
                 node_count: int, database_pid: int | None) -> None:
        from tests.e2e.coordinator_harness import (
            Coordinator,
            approved_nodes,
            init_coordinator,
            model_list,
            wait_until,
        )

        self.label, self.database_pid = label, database_pid
        self.coordinator = Coordinator(init_coordinator(directory, bundle, database_url),
                                       workers=coordinator_workers).start()
        if coordinator_workers > 1:
            wait_until(lambda: len(self.coordinator.worker_pids()) == coordinator_workers, what="the workers")
        self.nodes = approved_nodes(self.coordinator, node_count)
        self.operator = self.coordinator.operator_token()
        self.base = model_list(self.coordinator, self.operator)[0]

    def measure(self, count: int, args: argparse.Namespace, layout: dict[str, tuple[int, ...]]) -> dict:
        """``args.rounds`` rounds of ``count`` nodes; medians over the rounds."""
        from tests.e2e.coordinator_harness import plan_json, publish_via_api

        coordinator = self.coordinator
        log_mark = coordinator.log.stat().st_size
        plan = json.loads(plan_json(self.base["sha256"], min_nodes=count, rounds=args.rounds,
                                    architecture="pneumonet-m", input_size=224))
        plan["name"] = f"benchmark {count} nodes"
        summary = publish_via_api(coordinator, self.operator, json.dumps(plan))
        timings = run_rounds(coordinator, self.nodes[:count], layout, summary["plan_sha256"], args.rounds,
                             args.workers, self.database_pid)
        with coordinator.log.open("rb") as log:
            log.seek(log_mark)
            aggregate = [float(s) for s in re.findall(rb"aggregated in ([0-9.]+) s", log.read())]
        row = {key: round(statistics.median(t[key] for t in timings), 3) for key in timings[0]}
        row["overhead_runs_s"] = [round(t["overhead_s"], 3) for t in timings]
        row["aggregate_s"] = round(statistics.median(aggregate), 3) if aggregate else None
        print(json.dumps({"coordinator": self.label, count: row}), file=sys.stderr, flush=True)
        return row


def _coordinator_choice(text: str) -> tuple[str, int]:
    database, _, workers = text.partition("-")
    if database not in ("sqlite", "postgresql") or not workers.isdigit() or not 1 <= int(workers) <= 16 or (
            database == "sqlite" and workers != "1"):
        raise argparse.ArgumentTypeError("expected sqlite-1 or postgresql-N (N workers, 1–16)")
    return database, int(workers)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, nargs="+", default=[3, 10, 30])
    parser.add_argument("--rounds", type=int, default=5, help="rounds per node count (medians over them)")
    parser.add_argument("--epoch-runs", type=int, default=4,
                        help="local epochs measured per network, half before and half after the rounds (the fastest "
                             "is used); 0: none (the shares of a round are then left out)")
    parser.add_argument("--workers", type=int, default=max(2, os.cpu_count() or 2),
                        help="processes the simulated nodes run in")
    parser.add_argument("--coordinators", type=_coordinator_choice, nargs="+", default=[("sqlite", 1)],
                        help="coordinators measured one after the other in this run: sqlite-1, postgresql-N")
    args = parser.parse_args()

    # Epochs before and after the rounds; the fastest is used: a slower one would flatter the ratios.
    networks = {"eleven_million": eleven_million_network(), "default_model": default_model_network()}
    if args.epoch_runs < 0:
        parser.error("--epoch-runs must be 0 or more")
    before = min(args.epoch_runs, max(1, args.epoch_runs // 2))
    epochs = {name: [local_epoch_seconds(network) for _ in range(before)] for name, network in networks.items()}
    layout = weight_layout()
    parameters = sum(int(np.prod(shape)) for shape in layout.values())
    report: dict[str, object] = {"parameters": parameters, "tensors": len(layout),
                                 "update_mb": round(parameters * 4 / 1e6, 1), "rounds_per_size": args.rounds,
                                 "node_processes": args.workers, "cpu_cores": os.cpu_count(),
                                 "load_average_at_start": os.getloadavg()[0], "coordinators": {}}
    measured: dict[str, dict[int, dict]] = {}
    with tempfile.TemporaryDirectory() as temporary, contextlib.ExitStack() as cleanup:
        root = Path(temporary)
        network_bundle(root / "bundle")
        postgres = None
        if any(database == "postgresql" for database, _ in args.coordinators):
            from tests.postgres_server import start_postgres_server

            servers = start_postgres_server()
            postgres = next(servers)
            cleanup.callback(servers.close)
        under_test = []
        for database, coordinator_workers in args.coordinators:
            label = f"{database}-{coordinator_workers}"
            url = postgres.fresh_database_url() if database == "postgresql" and postgres else ""
            measured_one = Measured(label, root / f"coordinator-{label}", root / "bundle", url, coordinator_workers,
                                    max(args.nodes), postgres.server_pid() if url and postgres else None)
            cleanup.callback(measured_one.coordinator.stop)
            under_test.append(measured_one)
            measured[label] = {}
        for count in args.nodes:  # node count by node count, each coordinator in turn: the machine's load drifts
            for one in under_test:
                measured[one.label][count] = one.measure(count, args, layout)
    for name, network in networks.items():
        epochs[name] += [local_epoch_seconds(network) for _ in range(args.epoch_runs - before)]
    if args.epoch_runs:
        epoch, small_epoch = min(epochs["eleven_million"]), min(epochs["default_model"])
        report["local_epoch_500_images_s"] = round(epoch, 3)
        report["local_epoch_runs_s"] = [round(e, 3) for e in epochs["eleven_million"]]
        report["default_model_epoch_500_images_s"] = round(small_epoch, 3)
    for label, rows in measured.items():
        nodes: dict[str, dict] = {}
        for count, row in rows.items():
            if args.epoch_runs:
                overhead, cpu = row["overhead_s"], row["coordinator_cpu_s"] + row["database_cpu_s"]
                row["overhead_share_of_round"] = round(overhead / (overhead + epoch), 3)
                row["coordinator_cpu_share_of_round"] = round(cpu / (cpu + epoch), 3)
                row["overhead_share_of_round_default_model_epoch"] = round(overhead / (overhead + small_epoch), 3)
            nodes[str(count)] = row
        report["coordinators"][label] = {"nodes": nodes}  # type: ignore[index]
    baseline = next(iter(measured), None)
    if baseline is not None:  # every coordinator's overhead against the first one's, node count by node count
        for label, rows in measured.items():
            report["coordinators"][label]["overhead_ratio_to_" + baseline] = {  # type: ignore[index]
                str(count): round(row["overhead_s"] / measured[baseline][count]["overhead_s"], 3)
                for count, row in rows.items()}
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
