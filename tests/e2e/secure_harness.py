"""Simulated hospital nodes that speak the secure-aggregation protocol over real TLS (``SecAggNode`` + requests).

Used where a test must control exactly when each node stops (drop-outs) or what it sees; the real client
(``pneumodesk.client.secure_upload``) is covered by ``test_secure_round_client.py``.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from pneumodesk.federation.messages import SHA256_HEADER
from pneumodesk.federation.secagg import (
    KeyRoster,
    MaskedInput,
    SecAggNode,
    ShareDelivery,
    SurvivorList,
    UnmaskRequest,
)
from pneumodesk.federation.secagg.vector import flatten_state
from pneumodesk.federation.secagg.wire import SecureRoster, path, round_key
from pneumodesk.federation.tensors import sha256_hex

from .coordinator_harness import TIMEOUT, Coordinator, SimulatedNode, approved_nodes, wait_until


def secure_plan_json(base_sha256: str, *, min_nodes: int, rounds: int = 1, phase_seconds: int = 30,
                     threshold: int | None = None, deadline: int = 3600, **changes: Any) -> str:
    return json.dumps({
        "name": "secure test plan", "architecture": "pneumonet-tiny", "input_size": 32,
        "base_model_sha256": base_sha256, "learning_rate": 0.01, "rounds": rounds, "min_nodes": min_nodes,
        "round_deadline_seconds": deadline, "secure_aggregation": True, "secure_phase_seconds": phase_seconds,
        "secure_aggregation_threshold": threshold, "dp": {"enabled": False}, **changes,
    })


def audience(coordinator: Coordinator) -> str:
    federation = coordinator.session().get(f"{coordinator.url}/version", timeout=TIMEOUT).json()["federation"]
    return f"pneumodesk-node:{federation}"


class SecureNode:
    """One simulated node's side of one secure round: each method sends one phase's message."""

    def __init__(self, node: SimulatedNode, plan_sha: str, round_id: int, federation_audience: str) -> None:
        self.node, self.round_id = node, round_id
        self.protocol = SecAggNode.begin(round_key(federation_audience, plan_sha, round_id), node.node_id, node.key)
        self.masked: bytes | None = None

    @property
    def node_id(self) -> str:
        return self.node.node_id

    def _url(self, endpoint: str) -> str:
        return f"{self.node.coordinator.url}{path(self.round_id, endpoint)}"

    def post(self, endpoint: str, body: bytes):  # type: ignore[no-untyped-def]
        return self.node.http.post(self._url(endpoint), data=body, timeout=TIMEOUT,
                                   headers={**self.node.headers(), "Content-Type": "application/json"})

    def get(self, endpoint: str):  # type: ignore[no-untyped-def]
        return self.node.http.get(self._url(endpoint), headers=self.node.headers(), timeout=TIMEOUT)

    def advertise(self) -> dict:
        response = self.post("advertisement", self.protocol.advertisement.model_dump_json().encode())
        assert response.status_code == 200, response.text
        return response.json()

    def roster(self) -> SecureRoster:
        response = self.get("roster")
        assert response.status_code == 200, response.text
        return SecureRoster.model_validate_json(response.content)

    def share(self, roster: SecureRoster | None = None) -> dict:
        roster = roster or self.roster()
        message = self.protocol.share_keys(roster.roster, roster.identity_keys)
        response = self.post("shares", message.model_dump_json().encode())
        assert response.status_code == 200, response.text
        return response.json()

    def send_masked(self, delta: np.ndarray, examples: int) -> dict:
        response = self.get("delivery")
        assert response.status_code == 200, response.text
        delivery = ShareDelivery.model_validate_json(response.content)
        self.masked = self.protocol.masked_input(delivery, delta, examples).to_bytes()
        response = self.node.http.put(self._url("update"), data=self.masked, timeout=TIMEOUT, headers={
            **self.node.headers(), SHA256_HEADER: sha256_hex(self.masked), "Content-Type": "application/octet-stream"})
        assert response.status_code == 200, response.text
        return response.json()

    def confirm(self) -> dict:
        response = self.get("survivors")
        assert response.status_code == 200, response.text
        signature = self.protocol.confirm_survivors(SurvivorList.model_validate_json(response.content), self.node.key)
        response = self.post("consistency", signature.model_dump_json().encode())
        assert response.status_code == 200, response.text
        return response.json()

    def unmask(self) -> dict:
        response = self.get("unmask-request")
        assert response.status_code == 200, response.text
        reply = self.protocol.unmask(UnmaskRequest.model_validate_json(response.content))
        response = self.post("unmask", reply.model_dump_json().encode())
        assert response.status_code == 200, response.text
        return response.json()


def round_info(node: SimulatedNode, round_id: int) -> dict:
    response = node.get(f"/rounds/{round_id}")
    assert response.status_code == 200, response.text
    return response.json()


def wait_phase(node: SimulatedNode, round_id: int, phase: str, timeout: float = TIMEOUT) -> dict:
    def reached() -> dict | None:
        info = round_info(node, round_id)
        if info["state"] == "failed" and phase != "failed":
            raise AssertionError(f"the round failed: {info['reason']}")
        return info if phase in (info["phase"], info["state"]) else None

    return wait_until(reached, timeout, what=f"round {round_id} to reach {phase}")


def exchange_keys(secure: list[SecureNode], watcher: SimulatedNode, round_id: int) -> None:
    """Every node advertises its round keys, then sends its shares; returns once the round asks for masked inputs."""
    for node in secure:
        node.advertise()
    wait_phase(watcher, round_id, "share_keys")
    for node in secure:
        node.share()
    wait_phase(watcher, round_id, "masked_input")


def secure_nodes(coordinator: Coordinator, count: int) -> list[SimulatedNode]:
    return approved_nodes(coordinator, count)


def local_deltas(base: dict[str, np.ndarray], count: int, seed: int = 7, scale: float = 0.05
                 ) -> list[dict[str, np.ndarray]]:
    """Each node's trained weights (base + a small random change, float32 like real training)."""
    rng = np.random.default_rng(seed)
    return [{name: (array + rng.normal(0, scale, array.shape)).astype(array.dtype) for name, array in base.items()}
            for _ in range(count)]


def flat_delta(local: dict[str, np.ndarray], base: dict[str, np.ndarray]) -> np.ndarray:
    local_vector, layout = flatten_state(local)
    base_vector, base_layout = flatten_state(base)
    assert layout == base_layout
    return local_vector - base_vector


def masked_words(data: bytes) -> np.ndarray:
    return MaskedInput.from_bytes(data).words


__all__ = ["KeyRoster", "SecureNode", "audience", "flat_delta", "local_deltas", "masked_words", "round_info",
           "secure_nodes", "secure_plan_json", "wait_phase"]
