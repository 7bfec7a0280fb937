"""End to end: operator actions are audited (API), operators can be disabled; the log is append-only."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from pneumodesk.coordinator.config import CoordinatorConfig, CoordinatorPaths
from pneumodesk.coordinator.db import make_engine

from .coordinator_harness import (
    PASSWORD,
    SimulatedNode,
    approve_via_api,
    coordinator_cli,
    enrolment_code_via_api,
    model_list,
    on_both_databases,
    plan_json,
    publish_via_api,
)

VIEWER_PASSWORD = "viewer password 123"


def _login(coordinator, username: str, password: str):
    return coordinator.session().post(f"{coordinator.url}/operators/login",
                                      json={"username": username, "password": password}, timeout=30)


def _audit(coordinator, token: str, **params):
    return coordinator.session().get(f"{coordinator.url}/audit", params=params,
                                     headers={"Authorization": f"Bearer {token}"}, timeout=30)


@on_both_databases
def test_operator_actions_are_audited_and_readable_by_api_and_cli(coordinator, tmp_path):
    # Prepare: a viewer account made on the command line.
    coordinator_cli("operators", "add", coordinator.directory, "auditor", "--role", "viewer", "--password-stdin",
                    stdin=VIEWER_PASSWORD + "\n")

    # Execute: a failed and a good login, an enrolment code, a node enrols, is approved and revoked, a plan is
    # published over the API; a model is exported on the command line.
    assert _login(coordinator, "admin", "not the password").status_code == 401
    operator = coordinator.operator_token()
    code = enrolment_code_via_api(coordinator, operator)
    node = SimulatedNode(coordinator, "Hospital A")
    node.enrol(code)
    approve_via_api(coordinator, operator, node.node_id)
    revoked = coordinator.session().post(f"{coordinator.url}/nodes/{node.node_id}/revoke",
                                         headers={"Authorization": f"Bearer {operator}"}, timeout=30)
    assert revoked.status_code == 200
    base = model_list(coordinator, operator)[0]
    plan = publish_via_api(coordinator, operator, plan_json(base["sha256"], min_nodes=1))
    coordinator_cli("models", "export", coordinator.directory, "1", tmp_path / "exported")

    # Assert: the viewer reads every action, oldest first, with who did it; no secret is in the log.
    viewer = _login(coordinator, "auditor", VIEWER_PASSWORD).json()["access_token"]
    response = _audit(coordinator, viewer)
    assert response.status_code == 200, response.text
    entries = response.json()
    actions = [(e["actor"], e["action"], e["target"]) for e in entries]
    local = [a for a in actions if a[0].startswith("local:")]
    assert [a[1] for a in local[:3]] == ["operator.create", "model.import", "operator.create"]  # init, then add
    assert ("anonymous", "operator.login_failed", "admin") in actions
    assert ("admin", "operator.login", "admin") in actions
    api_actions = [a for a in actions if a[0] == "admin" and a[1] != "operator.login"]
    assert api_actions == [("admin", "enrolment_code.create", api_actions[0][2]),
                           ("admin", "node.approve", node.node_id), ("admin", "node.revoke", node.node_id),
                           ("admin", "plan.publish", plan["plan_sha256"])]
    assert (f"node:{node.node_id}", "node.enrol", node.node_id) in actions
    assert actions[-2][1] == "model.export" and actions[-2][0].startswith("local:")
    assert actions[-1] == ("auditor", "operator.login", "auditor")
    assert [e["id"] for e in entries] == sorted(e["id"] for e in entries)
    text = json.dumps(entries)
    for secret in (code, PASSWORD, VIEWER_PASSWORD, operator, viewer):
        assert secret not in text

    # Paging: the newest two, and entries after a given id.
    newest = _audit(coordinator, viewer, limit=2).json()
    assert [e["id"] for e in newest] == [e["id"] for e in entries[-2:]]
    assert [e["id"] for e in _audit(coordinator, viewer, after_id=entries[-3]["id"]).json()] == \
        [e["id"] for e in entries[-2:]]

    # The command line prints the same log.
    printed = json.loads(coordinator_cli("audit", coordinator.directory).stdout)
    assert [e["id"] for e in printed[: len(entries)]] == [e["id"] for e in entries]

    # Nodes and anonymous callers cannot read it.
    other = SimulatedNode(coordinator, "Hospital B")
    other.enrol(enrolment_code_via_api(coordinator, operator))
    approve_via_api(coordinator, operator, other.node_id)
    assert other.request_token().status_code == 200
    assert other.get("/audit").status_code == 401
    assert coordinator.session().get(f"{coordinator.url}/audit", timeout=30).status_code == 401


def test_a_disabled_operator_cannot_log_in_and_its_tokens_stop_working(coordinator):
    coordinator_cli("operators", "add", coordinator.directory, "deputy", "--role", "operator", "--password-stdin",
                    stdin=VIEWER_PASSWORD + "\n")
    token = _login(coordinator, "deputy", VIEWER_PASSWORD).json()["access_token"]
    assert _audit(coordinator, token).status_code == 200

    coordinator_cli("operators", "disable", coordinator.directory, "deputy")

    refused = _audit(coordinator, token)
    assert refused.status_code == 401 and "disabled" in refused.json()["message"]
    assert _login(coordinator, "deputy", VIEWER_PASSWORD).status_code == 401
    listed = {o["username"]: o for o in json.loads(coordinator_cli("operators", "list", coordinator.directory).stdout)}
    assert (listed["deputy"]["active"], listed["deputy"]["role"]) == (False, "operator")
    assert listed["admin"]["active"] is True

    coordinator_cli("operators", "enable", coordinator.directory, "deputy")
    assert _login(coordinator, "deputy", VIEWER_PASSWORD).status_code == 200
    actions = [(e["action"], e["target"]) for e in json.loads(coordinator_cli("audit", coordinator.directory).stdout)]
    assert actions.index(("operator.disable", "deputy")) < actions.index(("operator.enable", "deputy"))
    missing = coordinator_cli("operators", "disable", coordinator.directory, "nobody", check=False)
    assert missing.returncode == 1 and "There is no operator 'nobody'" in missing.stderr


@on_both_databases
def test_the_audit_log_is_append_only_in_the_database(coordinator_dir):
    config = CoordinatorConfig.load(CoordinatorPaths(coordinator_dir))
    engine = make_engine(config.resolved_database_url(CoordinatorPaths(coordinator_dir)))
    try:
        with engine.connect() as connection:
            assert connection.execute(text("SELECT COUNT(*) FROM audit_log")).scalar_one() >= 2
        for statement in ("UPDATE audit_log SET actor = 'someone else'", "DELETE FROM audit_log"):
            with engine.connect() as connection, pytest.raises(DBAPIError, match="append-only"):
                connection.execute(text(statement))
        with engine.connect() as connection:  # nothing changed
            changed = text("SELECT COUNT(*) FROM audit_log WHERE actor = 'someone else'")
            assert connection.execute(changed).scalar_one() == 0
    finally:
        engine.dispose()
