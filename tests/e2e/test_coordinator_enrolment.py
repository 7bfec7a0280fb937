"""End to end: init → serve → enrol → approve → token → revoke, with the operator CLI acting on a live server."""

from __future__ import annotations

import json
import stat

from pneumodesk.coordinator.tls import certificate_hosts

from .coordinator_harness import PASSWORD, SimulatedNode, coordinator_cli, on_both_databases


def test_init_writes_ca_certificates_private_keys_and_config(coordinator_dir):
    tls = coordinator_dir / "tls"
    assert (tls / "ca.pem").read_text().startswith("-----BEGIN CERTIFICATE-----")
    assert {"127.0.0.1", "localhost"} <= set(certificate_hosts(tls / "server.pem"))
    for secret in (tls / "ca-key.pem", tls / "server-key.pem", coordinator_dir / "keys" / "token-signing-ed25519.pem"):
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    config = json.loads((coordinator_dir / "coordinator.json").read_text())
    assert "password" not in json.dumps(config).lower()
    again = coordinator_cli("init", coordinator_dir, "--password-stdin", stdin=PASSWORD + "\n", check=False)
    assert again.returncode == 1 and "already holds a coordinator" in again.stderr


@on_both_databases
def test_enrol_approve_token_and_revoke_take_effect_on_a_running_server(coordinator):
    # Prepare: a one-time code from the operator CLI while the server runs.
    code = json.loads(coordinator_cli("enrol-code", coordinator.directory).stdout)["code"]
    node = SimulatedNode(coordinator, "St. Elsewhere")

    # Execute / assert: enrolment leaves the node pending; it cannot get a token yet.
    assert node.enrol(code)["status"] == "pending"
    pending = node.request_token()
    assert pending.status_code == 403 and pending.json()["error"] == "node_pending"
    assert "awaiting approval" in pending.json()["message"]

    # The code was one-time.
    reuse = SimulatedNode(coordinator, "Copycat").http.post(
        f"{coordinator.url}/nodes/enrol", json={"code": code, "name": "x", "public_key": SimulatedNode(
            coordinator, "x").public_key}, timeout=30)
    assert reuse.status_code == 403 and reuse.json()["error"] == "forbidden"

    coordinator_cli("nodes", "approve", coordinator.directory, node.node_id)
    assert node.request_token().status_code == 200
    assert node.get("/plans").status_code == 200
    listed = json.loads(coordinator_cli("nodes", "list", coordinator.directory).stdout)
    assert [(n["node_id"], n["status"]) for n in listed] == [(node.node_id, "approved")]

    # Revocation applies to the very next request, even with a token issued before it.
    coordinator_cli("nodes", "revoke", coordinator.directory, node.node_id)
    refused = node.get("/plans")
    assert refused.status_code == 403 and refused.json()["error"] == "node_revoked"
    assert "revoked" in refused.json()["message"]
    assert node.request_token().status_code in (403, 404)

    # Nothing secret reached the server log (it runs at INFO, access log on).
    log = coordinator.log.read_text()
    assert "GET /api/v1/plans" in log
    for secret in (code, node.token, PASSWORD):
        assert secret not in log


def test_operator_login_roles_and_login_rate_limit(coordinator):
    http = coordinator.session()
    wrong = http.post(f"{coordinator.url}/operators/login", json={"username": "admin", "password": "nope"}, timeout=30)
    assert wrong.status_code == 401 and wrong.json()["message"] == "Wrong user name or password."

    coordinator_cli("operators", "add", coordinator.directory, "watcher", "--role", "viewer", "--password-stdin",
                    stdin="viewer password 123\n")
    viewer = http.post(f"{coordinator.url}/operators/login",
                       json={"username": "watcher", "password": "viewer password 123"}, timeout=30).json()
    headers = {"Authorization": f"Bearer {viewer['access_token']}"}
    assert http.get(f"{coordinator.url}/nodes", headers=headers, timeout=30).status_code == 200
    denied = http.post(f"{coordinator.url}/enrolment-codes", headers=headers, timeout=30)
    assert denied.status_code == 403 and "operator role" in denied.json()["message"]

    statuses = [http.post(f"{coordinator.url}/operators/login", json={"username": "admin", "password": "guess"},
                          timeout=30) for _ in range(11)]
    assert [s.status_code for s in statuses] == [401] * 9 + [429, 429]  # 10 failures a minute (1 above)
    limited = statuses[-1]
    assert limited.status_code == 429
    assert limited.json()["error"] == "rate_limited" and int(limited.headers["Retry-After"]) >= 1


def test_health_version_and_openapi_are_served(shared_coordinator):
    coordinator = shared_coordinator
    http = coordinator.session()
    assert http.get(f"{coordinator.url}/health", timeout=30).json() == {"status": "ok"}
    assert http.get(f"{coordinator.url}/version", timeout=30).json()["protocol"] == 1
    schema = http.get(f"{coordinator.url}/openapi.json", timeout=30).json()
    paths = schema["paths"]
    assert "/api/v1/rounds/{round_id}/update" in paths and "/api/v1/plans/{sha}/wait" in paths
    upload = paths["/api/v1/rounds/{round_id}/update"]["put"]
    assert "application/octet-stream" in upload["requestBody"]["content"]
    assert {p["name"] for p in upload["parameters"]} >= {"X-Example-Count", "X-Content-SHA256"}


def test_error_answers_are_the_json_shape_the_openapi_description_promises(shared_coordinator):
    coordinator = shared_coordinator
    http = coordinator.session()
    schema = http.get(f"{coordinator.url}/openapi.json", timeout=30).json()
    fields = set(schema["components"]["schemas"]["ErrorBody"]["properties"])
    answers = [
        http.get(f"{coordinator.url}/nodes", timeout=30),  # no token
        http.get(f"{coordinator.url}/nodes", headers={"Authorization": "Bearer not-a-token"}, timeout=30),
        http.post(f"{coordinator.url}/operators/login", json={"username": "admin"}, timeout=30),  # no password
        http.post(f"{coordinator.url}/operators/login", data=b"{not json",
                  headers={"Content-Type": "application/json"}, timeout=30),
        http.get(f"{coordinator.url}/no-such-endpoint", timeout=30),
    ]
    for answer in answers:
        assert 400 <= answer.status_code < 500, answer.text
        assert answer.headers["content-type"].startswith("application/json")
        body = answer.json()
        assert {"error", "message"} <= set(body) <= fields, body
        assert body["message"] and "Traceback" not in body["message"]
