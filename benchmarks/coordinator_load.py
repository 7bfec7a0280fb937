"""Coordinator under load: N simulated hospitals long-polling and uploading, against ``serve --workers 1, 2, 4`` on
a real PostgreSQL server (``pgserver``) and ``--workers 1`` on SQLite, on 127.0.0.1 only.

Each node is a thread speaking the node protocol over HTTPS with ``requests`` (the test harness's
``SimulatedNode``: Ed25519 identity, tokens, join, download, upload), verifying the coordinator's own CA. Each plan
round: every node joins, downloads the model (sha256 checked), uploads an update (small integers, example counts
1–4, so the weighted mean is exact in float64 → float32), then long-polls (``until=round_end``) for the result.
Every request of a node opens a fresh connection (``Connection: close``) so requests spread over the workers as
behind a load balancer. The model is the small test network (a few thousand parameters): what is measured is the
coordinator's request handling, not bandwidth.

Reported per configuration (JSON on stdout): rounds completed, uploads, uploads/s over the rounds' wall time,
p50/p99 latency of the node requests (join, download, upload; long polls excluded: they wait by design), the
coordinator's peak RSS (supervisor + workers, MiB), errors (non-2xx answers or failed requests: must be 0), and
whether every aggregate equals the exact weighted mean of its round's updates. Bounded: ``--nodes`` ≤ 200,
``--rounds`` ≤ 20, and each configuration stops after ``--time-limit`` seconds.

    .venv/bin/python benchmarks/coordinator_load.py [--nodes 100] [--rounds 3] [--workers 1 2 4] [--no-sqlite]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


class Recorder:
    """Latencies and errors from every node thread."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.latencies: list[float] = []
        self.errors: list[str] = []

    def timed(self, what: str, call, ok=(200,)):  # type: ignore[no-untyped-def]
        started = time.perf_counter()
        try:
            response = call()
        except Exception as error:
            with self.lock:
                self.errors.append(f"{what}: {type(error).__name__}: {error}")
            raise
        elapsed = time.perf_counter() - started
        with self.lock:
            self.latencies.append(elapsed)
            if response.status_code not in ok:
                self.errors.append(f"{what}: {response.status_code} {response.text[:200]}")
        return response


def _rss_mib(pid: int) -> float:
    import psutil

    try:
        process = psutil.Process(pid)
        return sum(p.memory_info().rss for p in [process, *process.children(recursive=True)]) / 2**20
    except psutil.NoSuchProcess:
        return 0.0


def run_configuration(label: str, database_url: str, workers: int, nodes_count: int, rounds: int,
                      time_limit: float, bundle: Path) -> dict:
    from pneumodesk.federation.tensors import state_dict_to_bytes
    from tests.e2e.coordinator_harness import (
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

    work = Path(tempfile.mkdtemp(prefix=f"pneumodesk-load-{label}-"))
    directory = init_coordinator(work / "coordinator", bundle, database_url)
    settings = json.loads((directory / "coordinator.json").read_text())  # every node enrols from 127.0.0.1
    settings["enrol_attempts_per_minute"] = max(settings["enrol_attempts_per_minute"], 2 * nodes_count)
    (directory / "coordinator.json").write_text(json.dumps(settings))
    coordinator = Coordinator(directory, workers=workers)
    session = coordinator.session

    def closing():  # type: ignore[no-untyped-def]
        made = session()
        made.headers["Connection"] = "close"
        return made

    coordinator.session = closing  # type: ignore[method-assign]
    coordinator.start()
    if workers > 1:
        wait_until(lambda: len(coordinator.worker_pids()) == workers, what="the workers")
    peak_rss = [0.0]
    stop = threading.Event()

    def sample_rss() -> None:
        while not stop.is_set():
            peak_rss[0] = max(peak_rss[0], _rss_mib(coordinator.process.pid))
            stop.wait(0.25)

    sampler = threading.Thread(target=sample_rss, daemon=True)
    sampler.start()
    try:
        nodes = approved_nodes(coordinator, nodes_count)
        operator = coordinator.operator_token()
        base = model_list(coordinator, operator)[0]
        plan = publish_via_api(coordinator, operator, plan_json(base["sha256"], min_nodes=nodes_count,
                                                                rounds=rounds, deadline=int(time_limit) + 60))
        sha = plan["plan_sha256"]
        recorder = Recorder()
        sent: dict[int, list[tuple[dict[str, np.ndarray], int]]] = {}
        sent_lock = threading.Lock()
        deadline = time.monotonic() + time_limit

        def node_loop(index: int) -> None:
            node = nodes[index]
            examples = 1 + index % 4
            for round_number in range(rounds):
                if time.monotonic() > deadline:
                    return
                info = recorder.timed("join", lambda: node.http.post(
                    f"{coordinator.url}/plans/{sha}/join", headers=node.headers(), timeout=120)).json()
                if info.get("state") not in ("open", "collecting"):
                    return
                weights = recorder.timed("download", lambda v=info["model_version"]: node.http.get(
                    f"{coordinator.url}/models/{v}/weights", headers=node.headers(), timeout=120))
                from pneumodesk.federation.tensors import state_dict_from_bytes

                state = state_dict_from_bytes(weights.content, weights.headers["X-Content-SHA256"])
                update = dyadic_update(state, seed=1000 * round_number + index)
                with sent_lock:
                    sent.setdefault(info["round_id"], []).append((update, examples))
                recorder.timed("upload", lambda u=update, r=info["round_id"]: node.upload_bytes(
                    r, state_dict_to_bytes(u), examples))
                revision = info["revision"]
                while time.monotonic() < deadline:  # long poll for the round's end (not timed: it waits by design)
                    answer = node.http.get(f"{coordinator.url}/plans/{sha}/wait", headers=node.headers(),
                                           params={"since": revision, "until": "round_end", "timeout": 30},
                                           timeout=60)
                    if answer.status_code != 200:
                        with recorder.lock:
                            recorder.errors.append(f"wait: {answer.status_code}")
                        return
                    if answer.json()["changed"]:
                        break

        started = time.perf_counter()
        threads = [threading.Thread(target=node_loop, args=(i,)) for i in range(nodes_count)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(time_limit + 120)
        wall = time.perf_counter() - started

        rounds_info = coordinator.session().get(f"{coordinator.url}/rounds",
                                                headers={"Authorization": f"Bearer {operator}"}, timeout=60).json()
        complete = [r for r in rounds_info if r["state"] == "complete"]
        exact = True
        reader = nodes[0]
        for round_ in complete:
            result = reader.download(round_["result_version"])
            updates = sent.get(round_["round_id"], [])
            expected = weighted_mean([u for u, _ in updates], [n for _, n in updates])
            exact = exact and len(updates) == nodes_count and all(
                np.array_equal(result[name], expected[name]) for name in expected)
        uploads = sum(len(v) for v in sent.values())
        latencies = sorted(recorder.latencies)
        return {
            "database": label.split("-")[0], "workers": workers, "nodes": nodes_count,
            "rounds_requested": rounds, "rounds_completed": len(complete), "uploads": uploads,
            "wall_seconds": round(wall, 2), "uploads_per_second": round(uploads / wall, 2),
            "latency_p50_ms": round(1000 * statistics.median(latencies), 1) if latencies else None,
            "latency_p99_ms": round(1000 * latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))], 1)
            if latencies else None,
            "requests_timed": len(latencies), "coordinator_peak_rss_mib": round(peak_rss[0], 1),
            "errors": len(recorder.errors), "error_samples": recorder.errors[:5],
            "aggregates_exact": exact and len(complete) == rounds,
        }
    finally:
        stop.set()
        coordinator.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--time-limit", type=float, default=300.0, help="seconds per configuration")
    parser.add_argument("--no-sqlite", action="store_true", help="skip the SQLite, one-worker configuration")
    args = parser.parse_args()
    if not 1 <= args.nodes <= 200 or not 1 <= args.rounds <= 20:
        parser.error("--nodes must be 1–200 and --rounds 1–20")

    load_at_start = round(os.getloadavg()[0], 2)
    from tests.builders import make_tiny_bundle
    from tests.postgres_server import start_postgres_server

    bundle = Path(tempfile.mkdtemp(prefix="pneumodesk-load-bundle-"))
    make_tiny_bundle().save(bundle)
    servers = start_postgres_server()
    postgres = next(servers)
    results = []
    try:
        for workers in args.workers:
            result = run_configuration(f"postgresql-{workers}", postgres.fresh_database_url(), workers, args.nodes,
                                       args.rounds, args.time_limit, bundle)
            print(json.dumps(result), file=sys.stderr, flush=True)
            results.append(result)
        if not args.no_sqlite:
            result = run_configuration("sqlite-1", "", 1, args.nodes, args.rounds, args.time_limit, bundle)
            print(json.dumps(result), file=sys.stderr, flush=True)
            results.append(result)
    finally:
        servers.close()
    print(json.dumps({"benchmark": "coordinator_load", "nodes": args.nodes, "rounds": args.rounds,
                      "client": "the test harness's SimulatedNode (requests over HTTPS), one thread per node",
                      "cpu_cores": os.cpu_count(), "load_average_at_start": load_at_start, "results": results},
                     indent=2))
    return 0 if all(r["errors"] == 0 and r["aggregates_exact"] for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
