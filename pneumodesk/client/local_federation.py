"""A whole federation on this machine, for the demo, benchmarks and end-to-end tests: a real coordinator
(``pneumodesk-coordinator init`` + ``serve`` over TLS on 127.0.0.1, as a subprocess) and hospital nodes, each a
separate node home with its own store, Owner account, key, dataset, policy and approvals.

Everything goes through the same code paths as in production: enrolment over TLS with the pinned CA, the operator
API for approving nodes and publishing plans, ``NodeService`` for every admin decision (audited), and the
``ParticipationEngine`` for training. Nothing here switches a check off.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pneumodesk.federation.messages import ModelVersionInfo, PlanSummary, RoundInfo
from pneumodesk.federation.plan import TrainingPlan

from .engine_types import EngineOptions, EngineResult, EngineStatus
from .enrolment import enrol
from .errors import ClientError, CoordinatorUnreachable, ProtocolError
from .home_key_store import HomeKeyStore
from .keys import NodeKeyStore
from .participation import ParticipationEngine
from .transport import EgressEvent, Timeouts, Transport

if TYPE_CHECKING:
    from pneumodesk.node import Approval, DatasetInfo, Membership, NodePolicy, NodeService, UserSession

OPERATOR = "admin"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _OperatorTokens:
    """Operator bearer tokens by password login (a ``TokenSource``)."""

    def __init__(self, transport: Transport, password: str) -> None:
        self.transport, self.password = transport, password
        self._token: str | None = None

    def token(self) -> str:
        if self._token is None:
            response = self.transport.send("POST", "/operators/login", purpose="operator sign-in",
                                           json_body={"username": OPERATOR, "password": self.password})
            self._token = str(self.transport.json(response)["access_token"])
        return self._token

    def invalidate(self) -> None:
        self._token = None


class LocalCoordinator:
    """A coordinator folder and its ``serve`` subprocess on a free port of 127.0.0.1 (restartable, same port)."""

    def __init__(self, directory: Path, password: str) -> None:
        self.directory = Path(directory)
        self.password = password
        self.port = free_port()
        self.ca_path = self.directory / "tls" / "ca.pem"
        self.log_path = self.directory / "serve.log"
        self.process: subprocess.Popen[bytes] | None = None
        self._api: Transport | None = None

    @classmethod
    def create(cls, directory: Path, model_bundle: Path, password: str | None = None) -> LocalCoordinator:
        """``pneumodesk-coordinator init`` into ``directory`` with ``model_bundle`` as model version 1."""
        password = password or secrets.token_urlsafe(18)
        result = subprocess.run(
            [sys.executable, "-m", "pneumodesk.coordinator.cli", "init", str(directory), "--password-stdin",
             "--model", str(model_bundle), "--host", "127.0.0.1"],
            input=password + "\n", capture_output=True, text=True, timeout=300,
        )
        if result.returncode != 0:
            raise ClientError(f"The coordinator could not be created: {result.stderr.strip()[-500:]}")
        return cls(directory, password)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def start(self, timeout: float = 90.0) -> LocalCoordinator:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "pneumodesk.coordinator.cli", "serve", str(self.directory), "--port",
                 str(self.port), "--log-level", "warning"], stdout=log, stderr=subprocess.STDOUT, env=env)
        probe = Transport(self.url, self.ca_path, timeouts=Timeouts(2.0, 5.0), retries=0)
        deadline = time.monotonic() + timeout
        try:
            while True:
                if self.process.poll() is not None:
                    raise ClientError(f"The coordinator exited: {self.log_path.read_text()[-2000:]}")
                try:
                    probe.send("GET", "/health", purpose="health")
                    return self
                except CoordinatorUnreachable:
                    if time.monotonic() > deadline:
                        raise
                time.sleep(0.1)  # polling a starting process with a deadline, not a synchronisation sleep
        finally:
            probe.close()

    def stop(self, *, crash: bool = False) -> None:
        """SIGTERM (graceful) or, with ``crash``, SIGKILL as a power cut would."""
        if self._api is not None:
            self._api.close()
            self._api = None
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL if crash else signal.SIGTERM)
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=30)
        self.process = None

    # -- operator API -------------------------------------------------------------------------------------------

    @property
    def api(self) -> Transport:
        if self._api is None:
            self._api = Transport(self.url, self.ca_path)
            self._api.tokens = _OperatorTokens(self._api, self.password)
        return self._api

    def enrolment_code(self) -> str:
        response = self.api.send("POST", "/enrolment-codes", purpose="operator", auth=True)
        return str(self.api.json(response)["code"])

    def approve(self, node_id: str) -> None:
        self.api.send("POST", f"/nodes/{node_id}/approve", purpose="operator", auth=True)

    def revoke(self, node_id: str) -> None:
        self.api.send("POST", f"/nodes/{node_id}/revoke", purpose="operator", auth=True)

    def publish(self, plan: TrainingPlan) -> PlanSummary:
        response = self.api.send("POST", "/plans", purpose="operator", data=plan.canonical_json(),
                                 headers={"Content-Type": "application/json"}, auth=True)
        return PlanSummary.model_validate(self.api.json(response))

    def models(self) -> list[ModelVersionInfo]:
        return [ModelVersionInfo.model_validate(m) for m in self.api.json(
            self.api.send("GET", "/models", purpose="operator", auth=True))]

    def rounds(self) -> list[RoundInfo]:
        return [RoundInfo.model_validate(r) for r in self.api.json(
            self.api.send("GET", "/rounds", purpose="operator", auth=True))]

    def weights(self, version: int) -> bytes:
        from pneumodesk.federation.messages import SHA256_HEADER
        from pneumodesk.federation.tensors import sha256_hex

        response = self.api.send("GET", f"/models/{version}/weights", purpose="operator", auth=True)
        if sha256_hex(response.content) != response.headers.get(SHA256_HEADER):
            raise ProtocolError("Model weights arrived damaged.")
        return response.content


@dataclass
class LocalHospital:
    """One hospital node: its home, its ``NodeService``, its Owner signed in (who makes the admin decisions) and
    the store of its node key (built once here and handed to every connection)."""

    name: str
    home: Path
    service: NodeService
    owner: UserSession
    key_store: NodeKeyStore

    @classmethod
    def create(cls, home: Path, name: str, *, key_store: NodeKeyStore | None = None) -> LocalHospital:
        """A fresh node home; ``key_store`` defaults to the home's own ``HomeKeyStore``."""
        from pneumodesk.node import NodeService

        service = NodeService.open(home)
        password = secrets.token_urlsafe(16)
        service.accounts.create_owner("owner", name, password)
        owner = service.accounts.authenticate("owner", password)
        return cls(name, Path(home), service, owner, key_store if key_store is not None else HomeKeyStore(home))

    def enrol(self, coordinator: LocalCoordinator, *, approve: bool = True,
              recorder: Callable[[EgressEvent], None] | None = None) -> Membership:
        membership = enrol(self.service, self.owner, self.home, coordinator.url, coordinator.enrolment_code(),
                           coordinator.ca_path, self.name, key_store=self.key_store, recorder=recorder)
        if approve:
            coordinator.approve(membership.node_id)
        return membership

    def register_dataset(self, source: Path, name: str | None = None) -> DatasetInfo:
        return self.service.datasets.register(self.owner, name or f"{self.name} data", Path(source))

    def set_policy(self, **changes: Any) -> NodePolicy:
        return self.service.policy.set(self.owner, self.service.policy.get().with_settings(**changes))

    def approve_plan(self, plan: TrainingPlan, dataset_id: int) -> Approval:
        """The admin's approval, with the plan's whole ε on this dataset worked out as the GUI would."""
        from pneumodesk.training.privacy import plan_privacy_cost

        examples = len(self.service.datasets.files(dataset_id, "training"))
        cost = plan_privacy_cost(plan, examples)
        membership = self.service.membership.get()
        if membership is None:
            raise ClientError(f"{self.name} is not enrolled; enrol it before approving a plan.")
        return self.service.approvals.approve(self.owner, plan, dataset_id, membership.coordinator_url,
                                              None if cost is None else cost.epsilon_total)

    def engine(self, plan_sha256: str, *, options: EngineOptions | None = None,
               on_status: Callable[[EngineStatus], None] | None = None,
               recorder: Callable[[EgressEvent], None] | None = None, **connect_options: Any) -> ParticipationEngine:
        return ParticipationEngine(self.service, plan_sha256, home=self.home, key_store=self.key_store,
                                   options=options or EngineOptions(), on_status=on_status,
                                   connect_options={"recorder": recorder, **connect_options})

    def close(self, *, forget_key: bool = False) -> None:
        if forget_key:
            self.key_store.delete()
        self.service.close()


def run_engines(engines: list[ParticipationEngine], timeout: float | None = None) -> list[EngineResult]:
    """Run the engines in threads (one per hospital) and wait for all; returns their ``EngineResult``s."""
    results: list[EngineResult | None] = [None] * len(engines)

    def work(index: int) -> None:
        results[index] = engines[index].run()

    threads = [threading.Thread(target=work, args=(i,), name=f"hospital-{i}", daemon=True)
               for i in range(len(engines))]
    for thread in threads:
        thread.start()
    deadline = None if timeout is None else time.monotonic() + timeout
    for thread in threads:
        thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
    if any(thread.is_alive() for thread in threads):
        for engine in engines:
            engine.stop()
        for thread in threads:
            thread.join(60)
        raise TimeoutError(f"The hospitals did not finish within {timeout:g} s; they were stopped.")
    finished = [result for result in results if result is not None]
    if len(finished) != len(engines):  # an engine's thread died without a result (run() never raises)
        raise RuntimeError("A hospital's engine ended without a result.")
    return finished


