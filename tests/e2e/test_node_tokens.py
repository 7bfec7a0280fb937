"""End to end over TLS: enrolment states (pending → approved → revoked), token refresh before expiry and after a
401, and the federation audience check before anything is signed."""

from __future__ import annotations

import pytest

from pneumodesk.client import EngineOptions, EngineStage, NotAuthorised, connect, refresh_status, wait_for_approval
from pneumodesk.client.local_federation import LocalHospital

from .node_harness import make_plan, node_coordinator_fixture, ready_hospitals  # noqa: F401 - fixture


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_enrolment_waits_for_the_operator_and_a_revocation_stops_the_engine(node_coordinator, tmp_path):
    hospital = LocalHospital.create(tmp_path / "node", "St Elsewhere")
    membership = hospital.enrol(node_coordinator, approve=False)
    assert membership.status == "pending" and membership.ca_path == hospital.home / "federation" / "ca.pem"
    connection = connect(hospital.service, hospital.key_store)
    assert refresh_status(hospital.service, connection) == "pending"

    node_coordinator.approve(membership.node_id)
    assert wait_for_approval(hospital.service, connection, timeout=30) == "approved"
    assert hospital.service.membership.get().status == "approved"
    connection.close()

    node_coordinator.revoke(membership.node_id)
    plan = make_plan(node_coordinator, rounds=1, min_nodes=1)
    node_coordinator.publish(plan)
    result = hospital.engine(plan.sha256, options=EngineOptions(poll_timeout=5)).run()

    assert result.phase == EngineStage.REFUSED and result.reason == "revoked" and "revoked" in result.message
    assert hospital.service.membership.get().status == "revoked"
    actions = [r.action for r in hospital.service.read_audit(hospital.owner)]
    assert "federation_enrolled" in actions and actions.count("federation_status") == 2


def test_tokens_are_refreshed_before_expiry_and_once_after_a_401(node_coordinator, tmp_path):
    ((hospital, _),) = ready_hospitals(node_coordinator, tmp_path, 1)
    connection = connect(hospital.service, hospital.key_store)
    clock = Clock()
    tokens = connection.tokens
    tokens.clock = clock

    connection.client.plans()
    first = tokens.token()
    connection.client.plans()
    assert tokens.refreshes == 1  # reused while valid

    clock.now += 900  # the coordinator's default lifetime: the margin makes the node refresh before expiry
    connection.client.plans()
    assert tokens.refreshes == 2 and tokens.token() != first

    tokens._token = "eyJ.not-a-valid.token"  # as if it had expired on the server's clock
    connection.client.plans()
    assert tokens.refreshes == 3

    tokens.audience = "pneumodesk-node:someone-else"
    tokens.invalidate()
    with pytest.raises(NotAuthorised, match="another federation"):
        connection.client.plans()
    connection.close()
