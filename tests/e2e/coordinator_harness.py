"""Test harness: a real coordinator (``pneumodesk-coordinator serve`` over TLS on 127.0.0.1) and simulated nodes.

Nodes talk HTTPS with ``requests``, verifying against the coordinator's own CA (DIR/tls/ca.pem) — never with
verification switched off. Waiting is always polling with a timeout, never a fixed sleep.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from pneumodesk.federation.messages import API_PREFIX, EXAMPLES_HEADER, SHA256_HEADER, challenge_bytes
from pneumodesk.federation.tensors import sha256_hex, state_dict_from_bytes, state_dict_to_bytes

PASSWORD = "correct horse battery staple"
TIMEOUT = 60

# Runs a test that uses ``coordinator``/``coordinator_dir`` on SQLite and on a real PostgreSQL server.
on_both_databases = pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def coordinator_cli(*args: str | Path, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    """Run ``pneumodesk-coordinator ARGS`` as operators do (a separate process)."""
    result = subprocess.run(
        [sys.executable, "-m", "pneumodesk.coordinator.cli", *map(str, args)],
        input=stdin, capture_output=True, text=True, timeout=120,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"coordinator {args[0]} failed ({result.returncode}): {result.stderr}")
    return result


def init_coordinator(directory: Path, model: Path, database_url: str = "") -> Path:
    """``init`` a coordinator folder; with ``database_url`` its config names that database (else SQLite in it)."""
    database = ("--database-url", database_url) if database_url else ()
    coordinator_cli("init", directory, "--password-stdin", "--model", model, "--host", "127.0.0.1", *database,
                    stdin=PASSWORD + "\n")
    return directory


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(condition: Callable[[], Any], timeout: float = TIMEOUT, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)  # polling interval of a wait with a timeout, not a synchronisation sleep


class Coordinator:
    """A ``serve`` subprocess on a free port; ``start``/``stop`` may be called repeatedly on the same folder.

    With ``workers`` > 1 it is uvicorn's supervisor with that many worker processes, in a process group of its own
    (a crash kills them all, as a power cut would)."""

    def __init__(self, directory: Path, workers: int = 1, extra: tuple[str, ...] = ()) -> None:
        self.directory = directory
        self.workers = workers
        self.extra = extra  # more ``serve`` options
        self.port = free_port()
        self.ca = directory / "tls" / "ca.pem"
        self.process: subprocess.Popen | None = None
        self.log = directory / "serve.log"
        self._sessions: list[requests.Session] = []

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}{API_PREFIX}"

    @property
    def root_url(self) -> str:
        """Where the operations endpoints are (/healthz, /readyz, /metrics)."""
        return f"https://127.0.0.1:{self.port}"

    def session(self) -> requests.Session:
        session = requests.Session()
        session.trust_env = False  # else REQUESTS_CA_BUNDLE / proxy variables would override the pinned CA
        session.verify = str(self.ca)
        self._sessions.append(session)
        return session

    def start(self) -> Coordinator:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "pneumodesk.coordinator.cli", "serve", str(self.directory),
                 "--port", str(self.port), "--log-level", "info", "--workers", str(self.workers), *self.extra],
                stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
                start_new_session=True,
            )
        probe = self.session()

        def healthy() -> bool:
            if self.process.poll() is not None:
                raise AssertionError(f"coordinator exited: {self.log.read_text()[-3000:]}")
            try:
                return probe.get(f"{self.url}/health", timeout=2).status_code == 200
            except requests.ConnectionError:
                return False

        wait_until(healthy, what="the coordinator to answer /health")
        return self

    def stop(self, *, crash: bool = False) -> None:
        """SIGTERM (graceful: clients' idle keep-alive connections are closed first so it need not wait for them),
        or with ``crash`` SIGKILL, as a power cut would."""
        for session in self._sessions:
            session.close()
        if self.process is not None and self.process.poll() is None:
            if crash:
                os.killpg(self.process.pid, signal.SIGKILL)
            else:
                self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=3 if self.workers == 1 else 15)
            except subprocess.TimeoutExpired:  # TLS shutdown of a just-closed connection can hang for 30 s
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=30)
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):  # no worker outlives its supervisor
                os.killpg(self.process.pid, signal.SIGKILL)
        self.process = None

    def worker_pids(self) -> list[int]:
        """The worker processes' ids (uvicorn's supervisor's children; empty with one worker)."""
        import psutil

        assert self.process is not None
        pids = []
        for child in psutil.Process(self.process.pid).children():
            try:
                if child.status() != psutil.STATUS_ZOMBIE and "spawn_main" in " ".join(child.cmdline()):
                    pids.append(child.pid)
            except psutil.Error:  # it ended meanwhile
                continue
        return pids

    def operator_token(self, session: requests.Session | None = None) -> str:
        response = (session or self.session()).post(
            f"{self.url}/operators/login", json={"username": "admin", "password": PASSWORD}, timeout=TIMEOUT)
        assert response.status_code == 200, response.text
        return response.json()["access_token"]


class SimulatedNode:
    """A hospital node reduced to its protocol: an Ed25519 identity, tokens, download, upload."""

    def __init__(self, coordinator: Coordinator, name: str) -> None:
        self.coordinator = coordinator
        self.name = name
        self.key = Ed25519PrivateKey.generate()
        self.http = coordinator.session()
        self.node_id: str | None = None
        self.token: str | None = None

    @property
    def public_key(self) -> str:
        raw = self.key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return b64url(raw)

    def enrol(self, code: str) -> dict:
        body = {"code": code, "name": self.name, "public_key": self.public_key}
        response = self.http.post(f"{self.coordinator.url}/nodes/enrol", json=body, timeout=TIMEOUT)
        assert response.status_code == 201, response.text
        self.node_id = response.json()["node_id"]
        return response.json()

    def request_token(self) -> requests.Response:
        url = f"{self.coordinator.url}/nodes/{self.node_id}"
        challenge = self.http.post(f"{url}/challenge", timeout=TIMEOUT)
        if challenge.status_code != 200:
            return challenge
        body = challenge.json()
        signature = self.key.sign(challenge_bytes(body["audience"], self.node_id, body["nonce"]))
        response = self.http.post(f"{url}/token", json={"nonce": body["nonce"], "signature": b64url(signature)},
                                  timeout=TIMEOUT)
        if response.status_code == 200:
            self.token = response.json()["access_token"]
        return response

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.http.get(f"{self.coordinator.url}{path}", headers=self.headers(), timeout=TIMEOUT, **kwargs)

    def join(self, plan_sha: str) -> dict:
        response = self.http.post(f"{self.coordinator.url}/plans/{plan_sha}/join", headers=self.headers(),
                                  timeout=TIMEOUT)
        assert response.status_code == 200, response.text
        return response.json()

    def download(self, version: int) -> dict[str, np.ndarray]:
        return state_dict_from_bytes(*self.download_bytes(version))

    def download_bytes(self, version: int) -> tuple[bytes, str]:
        """The weights and their announced sha256, read in one call (not in requests' 10 KiB content chunks)."""
        response = self.http.get(f"{self.coordinator.url}/models/{version}/weights", headers=self.headers(),
                                 timeout=TIMEOUT, stream=True)
        if response.status_code != 200:
            raise AssertionError(response.text)
        data = response.raw.read()
        response.raw.release_conn()
        assert len(data) == int(response.headers["Content-Length"]), "the download was cut short"
        return data, response.headers[SHA256_HEADER]

    def upload_bytes(self, round_id: int, data: bytes, examples: int) -> requests.Response:
        headers = {**self.headers(), EXAMPLES_HEADER: str(examples), SHA256_HEADER: sha256_hex(data),
                   "Content-Type": "application/octet-stream"}
        return self.http.put(f"{self.coordinator.url}/rounds/{round_id}/update", data=data, headers=headers,
                             timeout=TIMEOUT)

    def upload(self, round_id: int, state: dict[str, np.ndarray], examples: int) -> requests.Response:
        return self.upload_bytes(round_id, state_dict_to_bytes(state), examples)


def enrolment_code_via_api(coordinator: Coordinator, operator_token: str) -> str:
    response = coordinator.session().post(f"{coordinator.url}/enrolment-codes",
                                          headers={"Authorization": f"Bearer {operator_token}"}, timeout=TIMEOUT)
    assert response.status_code == 201, response.text
    return response.json()["code"]


def approve_via_api(coordinator: Coordinator, operator_token: str, node_id: str) -> None:
    response = coordinator.session().post(f"{coordinator.url}/nodes/{node_id}/approve",
                                          headers={"Authorization": f"Bearer {operator_token}"}, timeout=TIMEOUT)
    assert response.status_code == 200, response.text


def approved_nodes(coordinator: Coordinator, count: int) -> list[SimulatedNode]:
    token = coordinator.operator_token()
    nodes = []
    for i in range(count):
        node = SimulatedNode(coordinator, f"Hospital {i}")
        node.enrol(enrolment_code_via_api(coordinator, token))
        approve_via_api(coordinator, token, node.node_id)
        assert node.request_token().status_code == 200
        nodes.append(node)
    return nodes


def plan_json(base_sha256: str, *, min_nodes: int, rounds: int = 1, architecture: str = "pneumonet-tiny",
              input_size: int = 32, deadline: int = 3600, max_update_norm: float | None = None) -> str:
    plan: dict[str, object] = {
        "name": "test plan", "architecture": architecture, "input_size": input_size,
        "base_model_sha256": base_sha256, "learning_rate": 0.01, "rounds": rounds, "min_nodes": min_nodes,
        "round_deadline_seconds": deadline, "secure_aggregation": False, "dp": {"enabled": False},
    }
    if max_update_norm is not None:
        plan["max_update_norm"] = max_update_norm
    return json.dumps(plan)


def publish_via_api(coordinator: Coordinator, operator_token: str, plan: str) -> dict:
    response = coordinator.session().post(f"{coordinator.url}/plans", data=plan,
                                          headers={"Authorization": f"Bearer {operator_token}",
                                                   "Content-Type": "application/json"}, timeout=TIMEOUT)
    assert response.status_code == 201, response.text
    return response.json()


def model_list(coordinator: Coordinator, operator_token: str) -> list[dict]:
    response = coordinator.session().get(f"{coordinator.url}/models",
                                         headers={"Authorization": f"Bearer {operator_token}"}, timeout=TIMEOUT)
    assert response.status_code == 200, response.text
    return response.json()


def random_bundle(directory: Path, parameters: int) -> Path:
    """A model bundle of the default architecture's card with ``parameters`` random float32 weights in 11 tensors
    (the coordinator never builds the network, so any tensors do: this is the issue's 11 M-parameter model)."""
    import torch

    from pneumodesk.model import ModelBundle, default_bundle_path, load_bundle

    card = load_bundle(default_bundle_path()).card
    generator = torch.Generator().manual_seed(0)
    sizes = [parameters // 11] * 10 + [parameters - 10 * (parameters // 11)]
    state = {f"layer{i}.weight": torch.randn(n, generator=generator) * 0.01 for i, n in enumerate(sizes)}
    ModelBundle(card.with_updates(parameters=parameters), state).save(directory)
    return directory


def dyadic_update(base: dict[str, np.ndarray], seed: int) -> dict[str, np.ndarray]:
    """An update whose values are small integers: weighted means with power-of-two totals are exact in float32."""
    rng = np.random.default_rng(seed)
    return {name: rng.integers(-64, 64, size=array.shape).astype(array.dtype) for name, array in base.items()}


def weighted_mean(updates: list[dict[str, np.ndarray]], counts: list[int]) -> dict[str, np.ndarray]:
    total = sum(counts)
    return {
        name: (sum(u[name].astype(np.float64) * n for u, n in zip(updates, counts, strict=True)) / total)
        .astype(updates[0][name].dtype)
        for name in updates[0]
    }
