"""A scripted, lying coordinator for fuzzing the node: a requests adapter that answers the node's real ``Transport``
in-process with whatever bytes a test chooses (status, headers, body), so every answer passes through the same
parsing code as an answer from the network.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import secrets
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

from pneumodesk.client.api import CoordinatorClient
from pneumodesk.client.transport import Transport
from pneumodesk.federation.vocabulary import MembershipStatus
from pneumodesk.node import NodeService, UserSession
from pneumodesk.node.membership import Membership

BASE_URL = "https://coordinator.invalid:8443"
AUDIENCE = "pneumodesk-node:fuzz"
NODE_ID = "node-fuzz"


@dataclass(frozen=True)
class Answer:
    """One HTTP answer exactly as the lying coordinator sends it."""

    body: bytes = b""
    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    stream: BinaryIO | None = None  # read instead of ``body``, as the node reads it (a body too big to hold)


Script = Callable[[requests.PreparedRequest], Answer]


class ScriptedAdapter(BaseAdapter):
    """Answers every request with ``script(request)``; records the requests it saw."""

    def __init__(self, script: Script) -> None:
        super().__init__()
        self.script = script
        self.requests: list[requests.PreparedRequest] = []

    def send(self, request: requests.PreparedRequest, stream: bool = False, timeout: Any = None,
             verify: Any = True, cert: Any = None, proxies: Any = None) -> requests.Response:
        self.requests.append(request)
        answer = self.script(request)
        response = requests.Response()
        response.status_code = answer.status
        response.reason = "Scripted"
        response.headers = CaseInsensitiveDict(answer.headers)
        response.raw = answer.stream if answer.stream is not None else io.BytesIO(answer.body)
        response.url = request.url or ""
        response.request = request
        response.encoding = None
        return response

    def close(self) -> None:
        pass


def lying_transport(ca_path: Path, script: Script, **kwargs: Any) -> tuple[Transport, ScriptedAdapter]:
    """A real ``Transport`` whose every request is answered by ``script`` (nothing leaves the process)."""
    if not ca_path.exists():
        ca_path.parent.mkdir(parents=True, exist_ok=True)
        ca_path.write_text("not used: no request leaves the process")
    transport = Transport(BASE_URL, ca_path, retries=0, **kwargs)
    adapter = ScriptedAdapter(script)
    transport.session.mount("https://", adapter)
    return transport, adapter


def lying_client(ca_path: Path, script: Script, **kwargs: Any) -> CoordinatorClient:
    return CoordinatorClient(lying_transport(ca_path, script, **kwargs)[0])


@dataclass
class EnrolledNode:
    """A real node store in a folder, with an Owner and an approved membership of the lying coordinator."""

    home: Path
    service: NodeService
    owner: UserSession

    @property
    def ca_path(self) -> Path:
        return self.home / "federation" / "ca.pem"


@contextmanager
def enrolled_node(home: Path, *, status: MembershipStatus = MembershipStatus.APPROVED) -> Iterator[EnrolledNode]:
    service = NodeService.open(home)
    password = secrets.token_urlsafe(16)
    service.accounts.create_owner("owner", "Owner", password)
    owner = service.accounts.authenticate("owner", password)
    ca = home / "federation" / "ca.pem"
    ca.parent.mkdir(parents=True, exist_ok=True)
    ca.write_text("not used: no request leaves the process")
    ca_sha256 = hashlib.sha256(ca.read_bytes()).hexdigest()
    service.membership.save(owner, Membership(BASE_URL, AUDIENCE, NODE_ID, "Fuzz node", ca_sha256, ca, status,
                                              dt.datetime.now(dt.UTC)))
    try:
        yield EnrolledNode(home, service, owner)
    finally:
        service.close()
