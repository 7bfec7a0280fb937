"""End to end: the operations endpoints — liveness, readiness (the database answers), Prometheus metrics summed
over two workers — request ids in answers and in JSON log lines."""

from __future__ import annotations

import json
import re

import pytest

from .coordinator_harness import (
    Coordinator,
    approved_nodes,
    dyadic_update,
    init_coordinator,
    model_list,
    plan_json,
    publish_via_api,
    wait_until,
)


@pytest.fixture
def json_logging_workers(tmp_path, tiny_bundle_dir, postgres_server):
    directory = init_coordinator(tmp_path / "coordinator", tiny_bundle_dir, postgres_server.fresh_database_url())
    server = Coordinator(directory, workers=2, extra=("--log-format", "json"))
    session = server.session

    def closing():  # type: ignore[no-untyped-def]
        made = session()
        made.headers["Connection"] = "close"  # every request may reach either worker
        return made

    server.session = closing  # type: ignore[method-assign]
    server.start()
    wait_until(lambda: len(server.worker_pids()) == 2, what="both workers")
    yield server
    server.stop()


def _metric(text: str, name: str, labels: str = "") -> float:
    pattern = re.escape(name) + (r"\{" + labels + r"[^}]*\}" if labels else r"(\{[^}]*\})?") + r" ([0-9.e+]+)"
    return sum(float(match.group(match.lastindex or 1)) for match in re.finditer(pattern, text))


def test_probes_metrics_over_two_workers_and_request_ids_in_json_logs(json_logging_workers):
    coordinator = json_logging_workers
    probe = coordinator.session()
    assert probe.get(f"{coordinator.root_url}/healthz", timeout=10).json() == {"status": "ok"}
    ready = probe.get(f"{coordinator.root_url}/readyz", timeout=10)
    assert ready.status_code == 200 and ready.json()["status"] == "ok"

    nodes = approved_nodes(coordinator, 2)
    operator = coordinator.operator_token()
    plan = publish_via_api(coordinator, operator, plan_json(model_list(coordinator, operator)[0]["sha256"],
                                                            min_nodes=2))
    round_id = nodes[0].join(plan["plan_sha256"])["round_id"]
    weights = nodes[0].download(1)
    sent = 0
    for seed, node in enumerate(nodes):
        response = node.upload(round_id, dyadic_update(weights, seed), 1)
        assert response.status_code == 200
        sent += int(response.request.headers["Content-Length"])
    tagged = nodes[0].http.get(f"{coordinator.url}/rounds/{round_id}", headers={
        **nodes[0].headers(), "X-Request-ID": "node0-check-42"}, timeout=10)
    assert tagged.headers["X-Request-ID"] == "node0-check-42"
    assert re.fullmatch(r"[0-9a-f]{16}", probe.get(f"{coordinator.url}/health", timeout=10).headers["X-Request-ID"])

    text = probe.get(f"{coordinator.root_url}/metrics", timeout=10).text
    assert _metric(text, "pneumodesk_coordinator_uploads_total", 'outcome="accepted"') == 2  # both workers summed
    assert _metric(text, "pneumodesk_coordinator_upload_bytes_total") == sent
    assert _metric(text, "pneumodesk_coordinator_rounds", 'state="complete"') == 1
    assert _metric(text, "pneumodesk_coordinator_nodes", 'status="approved"') == 2
    assert 'route="/api/v1/rounds/{round_id}/update"' in text
    for node in nodes:  # no node id in any label
        assert node.node_id not in text

    lines = [json.loads(line) for line in coordinator.log.read_text().splitlines() if line.startswith("{")]
    assert lines and all({"time", "level", "logger", "message"} <= line.keys() for line in lines)
    assert any(line.get("request_id") == "node0-check-42" for line in lines)
