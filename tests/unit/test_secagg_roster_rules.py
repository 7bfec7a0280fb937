"""Rosters, share lists (U2) and unmasking requests (U3) smaller than the hospital's minimum are refused at the node.

A scripted coordinator (the real ``SecAggServer`` driven step by step, the real ``SecAggNode``) names fewer nodes
than the victim's minimum at each step; the victim refuses with ``RosterTooSmall`` before it reveals anything.
"""

from __future__ import annotations

import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from pneumodesk.federation.secagg import MaskedInput, QuantisationSpec, SecAggNode, SecAggServer
from pneumodesk.federation.secagg.roster_rules import RosterTooSmall, key_fingerprint, smallest_round

ROUND = "federation-x/plan-abc/round-1"
VICTIM = "hospital-00"
LENGTH = 8


class ScriptedRound:
    """n nodes with identity keys; the victim begins with ``minimum``, the others with the protocol's floor."""

    def __init__(self, n: int, minimum: int) -> None:
        self.ids = [f"hospital-{i:02d}" for i in range(n)]
        identities = {node: Ed25519PrivateKey.generate() for node in self.ids}
        self.identities = identities
        self.public = {node: key.public_key().public_bytes_raw() for node, key in identities.items()}
        spec = QuantisationSpec.for_round(max_nodes=n, clip=1.0, max_examples=100)
        self.server = SecAggServer(ROUND, self.public, LENGTH, spec)
        self.nodes = {node: SecAggNode.begin(ROUND, node, identities[node], min_nodes=minimum if node == VICTIM else 2)
                      for node in self.ids}

    def share(self, who: list[str]) -> None:
        for node in self.nodes.values():
            self.server.receive_advertisement(node.advertisement)
        roster = self.server.close_advertising()
        for node in who:
            self.server.receive_shares(self.nodes[node].share_keys(roster, self.public))
        self.server.close_sharing()

    def mask(self, who: list[str]) -> None:
        for node in who:
            masked = self.nodes[node].masked_input(self.server.delivery_for(node), np.zeros(LENGTH), 10)
            self.server.receive_masked_input(MaskedInput.from_bytes(masked.to_bytes()))


def test_the_minimum_is_the_larger_of_plan_and_policy_and_never_below_two():
    assert smallest_round(5, 3) == 5 and smallest_round(2, 4) == 4 and smallest_round(None, 3) == 3
    assert smallest_round(None, 1) == 2 and smallest_round(1, 0) == 2


def test_a_roster_of_the_victim_and_one_enrolled_node_is_refused():
    scripted = ScriptedRound(2, minimum=3)  # the coordinator enrolled one node of its own beside the victim
    for node in scripted.nodes.values():
        scripted.server.receive_advertisement(node.advertisement)
    roster = scripted.server.close_advertising()  # threshold 2 of 2: a strict majority, so today it passes
    with pytest.raises(RosterTooSmall, match=r"key roster names 2 hospital\(s\); .* at least 3"):
        scripted.nodes[VICTIM].share_keys(roster, scripted.public)
    assert scripted.nodes[VICTIM].state.outgoing is None  # no share of the victim's secrets was made


def test_a_share_delivery_naming_fewer_nodes_than_the_minimum_is_refused():
    scripted = ScriptedRound(5, minimum=4)  # t = 3
    scripted.share(scripted.ids[:3])  # the coordinator relays the shares of only three nodes: U2 = 3 ≥ t
    with pytest.raises(RosterTooSmall, match="shared their keys names 3 hospital\\(s\\)"):
        scripted.nodes[VICTIM].masked_input(scripted.server.delivery_for(VICTIM), np.zeros(LENGTH), 10)


def test_a_survivor_list_with_fewer_nodes_than_the_minimum_is_refused_even_after_a_restart():
    scripted = ScriptedRound(5, minimum=4)
    scripted.share(scripted.ids)
    scripted.mask(scripted.ids[:3])  # the coordinator claims two nodes dropped: U3 = 3 ≥ t
    survivors = scripted.server.close_masking()
    restarted = SecAggNode.from_bytes(scripted.nodes[VICTIM].to_bytes())  # the minimum is in the saved state
    with pytest.raises(RosterTooSmall, match="surviving nodes names 3 hospital\\(s\\)"):
        restarted.confirm_survivors(survivors, scripted.identities[VICTIM])
    assert restarted.state.u3 is None and restarted.state.revealed == {}  # nothing signed, nothing revealed
    peer = "hospital-01"  # a node whose minimum is the protocol's floor signs the same list
    assert scripted.nodes[peer].confirm_survivors(survivors, scripted.identities[peer]).node_id == peer


def test_a_key_fingerprint_is_stable_and_readable():
    fingerprint = key_fingerprint(bytes(32))
    assert fingerprint == key_fingerprint(bytes(32)) != key_fingerprint(bytes(31) + b"\x01")
    assert len(fingerprint.split()) == 10 and all(len(group) == 4 for group in fingerprint.split())
