"""A revoked node is recognised by the refusal's typed reason (``RefusalReason.REVOKED``, from the coordinator's
``node_revoked`` code or from the challenge no longer knowing the node), never by the words of its message."""

from __future__ import annotations

import datetime as dt
import json
import secrets
from pathlib import Path

import pytest
import requests

from pneumodesk.client import EngineOptions, EngineStage, NotAuthorised, ParticipationEngine
from pneumodesk.client.api import CoordinatorClient
from pneumodesk.client.enrolment import FederationConnection, membership_status_of, refresh_status
from pneumodesk.client.keys import NodeKey
from pneumodesk.client.transport import Transport
from pneumodesk.federation.vocabulary import ErrorCode, MembershipStatus, RefusalReason
from pneumodesk.node import NodeService
from pneumodesk.node.membership import Membership


class RefusingTokens:
    """A token source whose coordinator refuses this node with ``error`` (what ``NodeTokens`` raises)."""

    def __init__(self, error: NotAuthorised) -> None:
        self.error = error

    def token(self) -> str:
        raise self.error

    def invalidate(self) -> None:
        pass


@pytest.fixture
def enrolled(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A node home with an approved membership and the connection parts that need no coordinator."""
    service = NodeService.open(tmp_path / "home")
    password = secrets.token_urlsafe(16)
    service.accounts.create_owner("owner", "Owner", password)
    owner = service.accounts.authenticate("owner", password)
    ca = tmp_path / "home" / "federation" / "ca.pem"
    ca.parent.mkdir(parents=True, exist_ok=True)
    ca.write_text("not used: no request is sent")
    service.membership.save(owner, Membership("https://127.0.0.1:9", "pneumodesk-node:test", "node-1", "Node",
                                              "0" * 64, ca, MembershipStatus.APPROVED, dt.datetime.now(dt.UTC)))
    transport = Transport("https://127.0.0.1:9", ca)
    yield service, transport
    transport.close()
    service.close()


def _connection(service: NodeService, transport: Transport, error: NotAuthorised) -> FederationConnection:
    membership = service.membership.get()
    assert membership is not None
    return FederationConnection(membership, transport, CoordinatorClient(transport), RefusingTokens(error),
                                NodeKey.generate())


def _run_engine(service: NodeService, connection: FederationConnection):  # type: ignore[no-untyped-def]
    engine = ParticipationEngine(service, "a" * 64, connection=connection,
                                 options=EngineOptions(retry_delays=(0.0,)))
    return engine.run()


def test_a_refusal_typed_revoked_marks_the_membership_revoked_whatever_its_words(enrolled) -> None:
    service, transport = enrolled
    error = NotAuthorised("Access denied.", 403, ErrorCode.FORBIDDEN, reason=RefusalReason.REVOKED)

    result = _run_engine(service, _connection(service, transport, error))

    assert result.phase == EngineStage.REFUSED and result.reason == RefusalReason.REVOKED
    assert service.membership.get().status == MembershipStatus.REVOKED


def test_a_refusal_that_only_says_revoked_in_words_does_not_revoke_the_membership(enrolled) -> None:
    service, transport = enrolled
    error = NotAuthorised("This node's enrolment was revoked, says the message.", 401, ErrorCode.UNAUTHORISED)

    result = _run_engine(service, _connection(service, transport, error))

    assert result.phase == EngineStage.REFUSED and result.reason == RefusalReason.NOT_AUTHORISED
    assert service.membership.get().status == MembershipStatus.APPROVED


def test_refresh_status_reads_pending_and_revoked_from_reason_and_status(enrolled) -> None:
    service, transport = enrolled
    pending = NotAuthorised("Revoked? No: awaiting the operator.", 403, ErrorCode.NODE_PENDING)

    assert refresh_status(service, _connection(service, transport, pending)) == MembershipStatus.PENDING
    assert membership_status_of(NotAuthorised("Gone.", 403, reason=RefusalReason.REVOKED)) == MembershipStatus.REVOKED
    assert membership_status_of(NotAuthorised("revoked", 401)) is None


def _answer(status: int, body: dict[str, str]) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = json.dumps(body).encode()
    return response


def test_the_transport_types_the_coordinators_error_code() -> None:
    revoked = Transport._refusal(_answer(403, {"error": "node_revoked", "message": "Access denied."}))
    forbidden = Transport._refusal(_answer(403, {"error": "forbidden", "message": "This node was revoked."}))
    unknown = Transport._refusal(_answer(409, {"error": "from_a_newer_version", "message": "No."}))

    assert isinstance(revoked, NotAuthorised) and revoked.reason == RefusalReason.REVOKED
    assert revoked.code == ErrorCode.NODE_REVOKED
    assert isinstance(forbidden, NotAuthorised) and forbidden.reason == RefusalReason.NOT_AUTHORISED
    assert unknown.code is None and unknown.status == 409 and str(unknown) == "No."
