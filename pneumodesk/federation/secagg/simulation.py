"""One whole secure round in process (every message through its wire encoding): for tests, benchmarks and demos.

Measures what each side computes and what each node sends and receives; nothing here is used by real rounds.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from .messages import (
    AggregateResult,
    ConsistencySignature,
    KeyAdvertisement,
    KeyRoster,
    MaskedInput,
    ShareDelivery,
    ShareKeysMessage,
    SurvivorList,
    UnmaskRequest,
    UnmaskResponse,
)
from .node import SecAggNode
from .quantise import QuantisationSpec
from .server import SecAggServer


@dataclass
class RoundCosts:
    """Seconds of compute per node and for the coordinator; bytes each node sent and received (message bodies).

    ``server_seconds`` is all coordinator compute; ``server_finish_seconds`` the part after the last unmasking answer
    (reconstruction, unmasking, decoding) — the part on a round's critical path.
    """

    node_seconds: dict[str, float] = field(default_factory=dict)
    server_seconds: float = 0.0
    server_finish_seconds: float = 0.0
    bytes_sent: dict[str, int] = field(default_factory=dict)
    bytes_received: dict[str, int] = field(default_factory=dict)

    def charge(self, node: str, seconds: float, sent: int = 0, received: int = 0) -> None:
        self.node_seconds[node] = self.node_seconds.get(node, 0.0) + seconds
        self.bytes_sent[node] = self.bytes_sent.get(node, 0) + sent
        self.bytes_received[node] = self.bytes_received.get(node, 0) + received


def simulate_round(updates: Mapping[str, np.ndarray], examples: Mapping[str, int], quantisation: QuantisationSpec,
                   *, round_id: str = "simulated-round", threshold: int | None = None,
                   drop_after_sharing: Collection[str] = (), drop_after_masking: Collection[str] = (),
                   identities: Mapping[str, Ed25519PrivateKey] | None = None) -> tuple[AggregateResult, RoundCosts]:
    """Advertise → share → mask → confirm → unmask for ``updates`` (node id → flat vector); raises like a real round."""
    ids: Sequence[str] = sorted(updates)
    identities = identities or {node: Ed25519PrivateKey.generate() for node in ids}
    public = {node: identities[node].public_key().public_bytes_raw() for node in ids}
    length = next(iter(updates.values())).size
    costs = RoundCosts()
    clock = time.perf_counter

    started = clock()
    server = SecAggServer(round_id, public, length, quantisation, threshold)
    costs.server_seconds += clock() - started
    nodes: dict[str, SecAggNode] = {}
    for node in ids:
        started = clock()
        nodes[node] = SecAggNode.begin(round_id, node, identities[node])
        wire = nodes[node].advertisement.model_dump_json().encode()
        costs.charge(node, clock() - started, sent=len(wire))
        started = clock()
        server.receive_advertisement(KeyAdvertisement.model_validate_json(wire))
        costs.server_seconds += clock() - started

    started = clock()
    roster_wire = server.close_advertising().model_dump_json().encode()
    costs.server_seconds += clock() - started
    for node in ids:
        started = clock()
        message = nodes[node].share_keys(KeyRoster.model_validate_json(roster_wire), public)
        wire = message.model_dump_json().encode()
        costs.charge(node, clock() - started, sent=len(wire), received=len(roster_wire))
        started = clock()
        server.receive_shares(ShareKeysMessage.model_validate_json(wire))
        costs.server_seconds += clock() - started

    started = clock()
    server.close_sharing()
    costs.server_seconds += clock() - started
    for node in ids:
        if node in drop_after_sharing:
            continue
        started = clock()
        delivery_wire = server.delivery_for(node).model_dump_json().encode()
        costs.server_seconds += clock() - started
        started = clock()
        masked = nodes[node].masked_input(ShareDelivery.model_validate_json(delivery_wire), updates[node],
                                          examples[node])
        wire = masked.to_bytes()
        costs.charge(node, clock() - started, sent=len(wire), received=len(delivery_wire))
        started = clock()
        server.receive_masked_input(MaskedInput.from_bytes(wire))
        costs.server_seconds += clock() - started

    survivors = [node for node in ids if node not in drop_after_sharing and node not in drop_after_masking]
    started = clock()
    survivors_wire = server.close_masking().model_dump_json().encode()
    costs.server_seconds += clock() - started
    for node in survivors:
        started = clock()
        signature = nodes[node].confirm_survivors(SurvivorList.model_validate_json(survivors_wire), identities[node])
        wire = signature.model_dump_json().encode()
        costs.charge(node, clock() - started, sent=len(wire), received=len(survivors_wire))
        started = clock()
        server.receive_signature(ConsistencySignature.model_validate_json(wire))
        costs.server_seconds += clock() - started

    started = clock()
    request_wire = server.close_consistency().model_dump_json().encode()
    costs.server_seconds += clock() - started
    for node in survivors:
        started = clock()
        wire = nodes[node].unmask(UnmaskRequest.model_validate_json(request_wire)).model_dump_json().encode()
        costs.charge(node, clock() - started, sent=len(wire), received=len(request_wire))
        started = clock()
        server.receive_unmask(UnmaskResponse.model_validate_json(wire))
        costs.server_seconds += clock() - started

    started = clock()
    result = server.finish()
    costs.server_finish_seconds = clock() - started
    costs.server_seconds += costs.server_finish_seconds
    return result, costs
