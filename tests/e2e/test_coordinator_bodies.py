"""End to end: malformed, oversize and incompatible requests are refused with clear JSON errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from .coordinator_harness import (
    Coordinator,
    approved_nodes,
    dyadic_update,
    init_coordinator,
    model_list,
    plan_json,
    publish_via_api,
)

UPDATE_LIMIT = 300_000  # the tiny test model's update is about 100 kB


@pytest.fixture(scope="module")
def small_limits(tmp_path_factory, tiny_bundle_dir):
    """One server with small body limits for the whole module (the tests do not disturb each other)."""
    coordinator_dir = init_coordinator(tmp_path_factory.mktemp("limits") / "coordinator", tiny_bundle_dir)
    config = json.loads((coordinator_dir / "coordinator.json").read_text())
    config.update(max_update_bytes=UPDATE_LIMIT, max_json_bytes=4096)
    (coordinator_dir / "coordinator.json").write_text(json.dumps(config))
    server = Coordinator(coordinator_dir).start()
    yield server
    server.stop()


@pytest.fixture
def in_round(small_limits):
    node = approved_nodes(small_limits, 1)[0]
    operator = small_limits.operator_token()
    base = model_list(small_limits, operator)[0]
    plan = publish_via_api(small_limits, operator, plan_json(base["sha256"], min_nodes=2))
    info = node.join(plan["plan_sha256"])
    return small_limits, node, info, node.download(info["model_version"])


def _is_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["error"] == code and body["message"].endswith(".")
    return body


def test_malformed_json_unknown_fields_and_wrong_types_are_422(small_limits):
    http, url = small_limits.session(), small_limits.url
    body = _is_error(http.post(f"{url}/operators/login", data=b"{not json", timeout=30,
                               headers={"Content-Type": "application/json"}), 422, "invalid_input")
    assert "JSON" in body["message"] or "json" in body["message"]
    body = _is_error(http.post(f"{url}/nodes/enrol", json={"code": "x" * 10, "name": "n", "public_key": "k" * 43,
                                                           "extra": 1}, timeout=30), 422, "invalid_input")
    assert "extra" in body["message"]
    _is_error(http.post(f"{url}/operators/login", json={"username": 5, "password": []}, timeout=30),
              422, "invalid_input")


def test_oversize_json_bodies_are_413_whether_announced_or_streamed(small_limits):
    http, url = small_limits.session(), small_limits.url
    big = json.dumps({"username": "admin", "password": "x" * 10_000})
    body = _is_error(http.post(f"{url}/operators/login", data=big, timeout=30,
                               headers={"Content-Type": "application/json"}), 413, "body_too_large")
    assert "4096 bytes" in body["message"]
    chunks = (b"x" * 1024 for _ in range(16))  # no Content-Length: chunked transfer encoding
    _is_error(http.post(f"{url}/operators/login", data=chunks, timeout=30,
                        headers={"Content-Type": "application/json"}), 413, "body_too_large")


def test_unknown_paths_and_methods_are_json(small_limits):
    http, url = small_limits.session(), small_limits.url
    _is_error(http.get(f"{url}/no-such-thing", timeout=30), 404, "not_found")
    _is_error(http.delete(f"{url}/health", timeout=30), 405, "method_not_allowed")


def test_bad_updates_are_refused_and_not_counted(in_round):
    coordinator, node, info, weights = in_round
    round_id = info["round_id"]
    oversize = node.upload_bytes(round_id, b"\0" * (UPDATE_LIMIT + 1), 10)
    _is_error(oversize, 413, "body_too_large")
    _is_error(node.upload_bytes(round_id, b"definitely not safetensors", 10), 422, "invalid_input")
    wrong_shape = dict(weights)
    name = next(iter(wrong_shape))
    wrong_shape[name] = np.zeros((3, 3), dtype=np.float32)
    body = _is_error(node.upload(round_id, wrong_shape, 10), 422, "invalid_input")
    assert name in body["message"]
    missing = {k: v for k, v in weights.items() if k != name}
    _is_error(node.upload(round_id, missing, 10), 422, "invalid_input")
    _is_error(node.upload(round_id, dyadic_update(weights, 0), 0), 422, "invalid_input")
    damaged = node.http.put(f"{coordinator.url}/rounds/{round_id}/update", data=b"abc", timeout=30,
                            headers={**node.headers(), "X-Example-Count": "3", "X-Content-SHA256": "0" * 64})
    _is_error(damaged, 422, "invalid_input")
    assert node.get(f"/rounds/{round_id}").json()["updates_received"] == 0
    assert node.upload(round_id, dyadic_update(weights, 0), 10).json()["counted"] is True
