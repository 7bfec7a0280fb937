"""A scripted, lying coordinator for fuzzing the node: a requests adapter that answers the node's real ``Transport``
in-process with whatever bytes a test chooses (status, headers, body), so every answer passes through the same
parsing code as an answer from the network.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
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
from pneumodesk.federation.messages import EXAMPLES_HEADER, SHA256_HEADER
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


# -- a whole plain round, for the participation engine ---------------------------------------------------------------

JSON = {"Content-Type": "application/json"}
Lie = Callable[["LyingRound", requests.PreparedRequest], Answer]


def json_answer(value: Any, status: int = 200) -> Answer:
    return Answer(json.dumps(value, allow_nan=True).encode(), status, JSON)


def vanish(_round: LyingRound, _request: requests.PreparedRequest) -> Answer:
    """The coordinator is gone: no HTTP answer at all (the transport sees a refused connection)."""
    raise requests.exceptions.ConnectionError("scripted: the coordinator vanished")


@dataclass
class LyingRound:
    """Plays one plain FedAvg round of ``plan_sha256`` honestly (wait → join → weights → update → complete), except
    that each endpoint named in ``lies`` ('wait', 'join', 'weights', 'update', 'round') answers what its lie returns.

    ``weights`` is the round's model (version 1); the round completes (result version 2) once an update arrived, and
    the plan (of one round) is finished once a long poll has shown the completed round.
    ``on_wait`` is called on every long poll (a test stops the engine from there after enough polls).
    """

    plan_sha256: str
    weights: bytes
    result: bytes | None = None  # the aggregated model (version 2); None: the same bytes as ``weights``
    lies: dict[str, Lie] = field(default_factory=dict)
    on_wait: Callable[[LyingRound], None] | None = None
    uploads: list[bytes] = field(default_factory=list)
    seen: list[str] = field(default_factory=list)
    waits: int = 0
    last_examples: int = 0
    completed_seen: bool = False

    ROUND_ID = 7

    @property
    def model_sha256(self) -> str:
        return hashlib.sha256(self.weights).hexdigest()

    def round_json(self, **changes: Any) -> dict[str, Any]:
        done = bool(self.uploads)
        return {"round_id": self.ROUND_ID, "plan_sha256": self.plan_sha256, "number": 1,
                "state": "complete" if done else "open", "phase": "plain_input",
                "model_version": 1, "model_sha256": self.model_sha256, "deadline": "2030-01-01T00:00:00+00:00",
                "updates_received": len(self.uploads), "min_nodes": 1, "result_version": 2 if done else None,
                "revision": f"{self.ROUND_ID}:{len(self.uploads)}", "reason": None, **changes}

    def receipt_json(self, **changes: Any) -> dict[str, Any]:
        data = self.uploads[-1] if self.uploads else b""
        return {"round_id": self.ROUND_ID, "update_sha256": hashlib.sha256(data).hexdigest(),
                "examples": int(self.last_examples), "counted": True, "round_state": "complete", **changes}

    @staticmethod
    def endpoint(request: requests.PreparedRequest) -> str:
        path = (request.path_url or "").split("?")[0]
        if path.endswith("/wait"):
            return "wait"
        if path.endswith("/join"):
            return "join"
        if path.endswith("/weights"):
            return "weights"
        if path.endswith("/update"):
            return "update"
        if "/rounds/" in path:
            return "round"
        return "other"

    def __call__(self, request: requests.PreparedRequest) -> Answer:
        name = self.endpoint(request)
        self.seen.append(f"{request.method} {name}")
        if name == "wait":
            self.waits += 1
            if self.on_wait is not None:
                self.on_wait(self)
        if name == "update":  # the node's update arrives whatever the answer says about it
            body = request.body if isinstance(request.body, bytes) else b""
            self.uploads.append(body)
            self.last_examples = int(request.headers.get(EXAMPLES_HEADER, "0"))
        lie = self.lies.get(name)
        if lie is not None:
            return lie(self, request)
        if name == "wait":
            if self.uploads and self.completed_seen:  # the plan had one round: it is over
                return json_answer({"changed": True, "plan_status": "finished", "round": None})
            self.completed_seen = bool(self.uploads)
            return json_answer({"changed": True, "plan_status": "active", "round": self.round_json()})
        if name in ("join", "round"):
            return json_answer(self.round_json())
        if name == "weights":
            wanted = self.result if "/models/2/" in (request.path_url or "") and self.result is not None else \
                self.weights
            return Answer(wanted, 200, {"Content-Type": "application/octet-stream",
                                        SHA256_HEADER: hashlib.sha256(wanted).hexdigest()})
        if name == "update":
            return json_answer(self.receipt_json())
        return json_answer({"error": "not_found", "message": "No such thing."}, 404)
