"""The node's side of one secure-aggregation round: a small state machine whose state survives a restart.

Flow (each method returns the message to send; persist ``to_bytes()`` — it holds secrets, store it encrypted —
*before* sending, so a restarted node answers a retry identically and never reveals conflicting shares):

    node = SecAggNode.begin(round_id, node_id, identity_key)      → node.advertisement      (advertise_keys)
    node.share_keys(roster, identity_keys)                        → ShareKeysMessage        (share_keys)
    node.masked_input(delivery, update, examples)                 → MaskedInput             (masked_input)
    node.confirm_survivors(survivor_list, identity_key)           → ConsistencySignature    (consistency_check)
    node.unmask(request)                                          → UnmaskResponse          (unmasking)

Invariants: for any node it reveals at most one kind of share — the self-mask-seed share (that node survived) or the
mask-key share (that node dropped) — across every request it ever answers in the round; it masks at most one update
(a second, different update is refused, since two masked inputs under the same masks would reveal their difference);
it accepts a roster only if every key is signed by its owner's enrolled identity key and the threshold is a strict
majority of the roster; it signs at most one survivor list U3 per round (U3 ⊆ its own U2, itself in it, at least t
nodes) and answers an unmasking request only for that U3, with the dropped nodes exactly U2 \\ U3, and only when at
least t distinct nodes of U3 signed that same U3 with their enrolled identity keys (Bonawitz et al.'s
ConsistencyCheck: a coordinator that shows different nodes different survivor lists cannot gather t signatures on
two lists while 2t > n + colluding nodes, so it cannot collect both kinds of share of one node).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from enum import StrEnum
from typing import Literal

import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from pydantic import BaseModel, ConfigDict

from . import masks, shamir
from .errors import ConsistencyCheckFailed, KeySubstitutionDetected, ProtocolViolation, UnmaskRequestRefused
from .keys import sign_advertisement, sign_survivors, verify_advertisement, verify_survivors
from .messages import (
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
from .quantise import ChunkEncoder, check_input
from .roster_rules import SMALLEST_ROUND, check_set
from .sharing import decrypt_share, encrypt_share


class NodeStage(StrEnum):
    """How far this node got in the round, in order; the value is stored in the node's persisted state."""

    ADVERTISED = "advertised"
    SHARED = "shared"
    MASKED = "masked"
    CONFIRMED = "confirmed"
    UNMASKED = "unmasked"


ShareKind = Literal["self_mask", "mask_key"]


def _digest(flat: np.ndarray, examples: int) -> str:
    """Identity of a (update, example count) pair, to refuse masking a second, different update."""
    hasher = hashlib.sha256(f"{flat.dtype.str}:{flat.size}:{examples}:".encode())
    hasher.update(flat.data.cast("B"))
    return hasher.hexdigest()


class NodeState(BaseModel):
    """Everything a node needs to continue the round after a restart (JSON; secrets inside — store encrypted)."""

    model_config = ConfigDict(extra="forbid", ser_json_bytes="base64", val_json_bytes="base64")

    round_id: str
    node_id: str
    phase: NodeStage = NodeStage.ADVERTISED
    mask_private: bytes
    share_private: bytes
    self_seed: bytes
    advertisement: KeyAdvertisement
    min_nodes: int = SMALLEST_ROUND  # the fewest nodes of U1, U2 and U3 (roster_rules), fixed at begin
    roster: KeyRoster | None = None
    identity_keys: dict[str, bytes] = {}  # roster node → enrolled Ed25519 public key, to check consistency signatures
    outgoing: ShareKeysMessage | None = None
    own_shares: tuple[str, str] | None = None  # (seed share, key share) for this node's own position, hex
    received: dict[str, tuple[str, str]] = {}  # sender → (seed share, key share), hex
    u2: tuple[str, ...] = ()
    input_sha256: str | None = None
    u3: tuple[str, ...] | None = None  # the one survivor list this node signed
    confirmation: ConsistencySignature | None = None
    revealed: dict[str, ShareKind] = {}


class SecAggNode:
    def __init__(self, state: NodeState) -> None:
        self.state = state

    @classmethod
    def begin(cls, round_id: str, node_id: str, identity: Ed25519PrivateKey, *,
              min_nodes: int = SMALLEST_ROUND) -> SecAggNode:
        """Fresh X25519 key pairs and self-mask seed for this round, and the signed advertisement of the keys.

        ``min_nodes``: the fewest nodes this node accepts in the roster, U2 and U3 (``roster_rules.smallest_round``).
        """
        mask_key, share_key = X25519PrivateKey.generate(), X25519PrivateKey.generate()
        advertisement = sign_advertisement(identity, round_id, node_id, mask_key.public_key().public_bytes_raw(),
                                           share_key.public_key().public_bytes_raw())
        return cls(NodeState(round_id=round_id, node_id=node_id, mask_private=mask_key.private_bytes_raw(),
                             share_private=share_key.private_bytes_raw(), self_seed=os.urandom(32),
                             advertisement=advertisement, min_nodes=max(min_nodes, SMALLEST_ROUND)))

    # -- persistence --------------------------------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        return self.state.model_dump_json().encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> SecAggNode:
        return cls(NodeState.model_validate_json(data))

    @property
    def advertisement(self) -> KeyAdvertisement:
        return self.state.advertisement

    @property
    def phase(self) -> NodeStage:
        return self.state.phase

    def _require(self, *allowed: NodeStage) -> None:
        if self.state.phase not in allowed:
            raise ProtocolViolation(f"This node is in phase {self.state.phase} of the round and cannot do that now.")

    def _check_round(self, round_id: str) -> None:
        if round_id != self.state.round_id:
            raise ProtocolViolation("The message belongs to another round.")

    # -- share_keys ---------------------------------------------------------------------------------------------

    def share_keys(self, roster: KeyRoster, identity_keys: Mapping[str, bytes]) -> ShareKeysMessage:
        """Check the roster (signatures, threshold, own keys), split both secrets and encrypt one share per peer.

        ``identity_keys`` maps node id → raw Ed25519 public key as enrolled. Retrying returns the same message.
        """
        state = self.state
        if state.outgoing is not None:
            if roster != state.roster:
                raise ProtocolViolation("The coordinator sent a different key roster for the same round.")
            return state.outgoing
        self._require(NodeStage.ADVERTISED)
        self._check_round(roster.round_id)
        ids = roster.node_ids
        check_set("roster", ids, state.min_nodes)
        if roster.advertisement(state.node_id) != state.advertisement:
            raise KeySubstitutionDetected("The roster does not carry this node's own keys; they were substituted.")
        if not (len(ids) / 2 < roster.threshold <= len(ids)):
            raise ProtocolViolation(
                f"The round's threshold {roster.threshold} is not a strict majority of its {len(ids)} nodes; "
                "joining it could expose this hospital's update."
            )
        if roster.quantisation.max_nodes < len(ids):
            raise ProtocolViolation("The round's number format is too narrow for its number of nodes.")
        keys_seen: set[bytes] = set()
        for item in roster.advertisements:
            if item.node_id not in identity_keys:
                raise ProtocolViolation(f"Node {item.node_id} is in the roster but not a known member.")
            verify_advertisement(item, identity_keys[item.node_id], state.round_id)
            if {item.mask_public, item.share_public} & keys_seen or item.mask_public == item.share_public:
                raise ProtocolViolation("Two round keys in the roster are the same; the roster is not genuine.")
            keys_seen |= {item.mask_public, item.share_public}
        xs = [roster.position(node) for node in ids]
        seed_shares = shamir.split(state.self_seed, roster.threshold, xs)
        key_shares = shamir.split(state.mask_private, roster.threshold, xs)
        share_private = X25519PrivateKey.from_private_bytes(state.share_private)
        outgoing = []
        for node in ids:
            x = roster.position(node)
            if node == state.node_id:
                state.own_shares = (hex(seed_shares[x]), hex(key_shares[x]))
                continue
            outgoing.append(encrypt_share(share_private, roster.advertisement(node).share_public, state.round_id,
                                          state.node_id, node, seed_shares[x], key_shares[x]))
        state.roster = roster
        state.identity_keys = {node: identity_keys[node] for node in ids}
        state.outgoing = ShareKeysMessage(round_id=state.round_id, sender=state.node_id, shares=tuple(outgoing))
        state.phase = NodeStage.SHARED
        return state.outgoing

    # -- masked_input -------------------------------------------------------------------------------------------

    def masked_input(self, delivery: ShareDelivery, update: np.ndarray, examples: int) -> MaskedInput:
        """Decrypt the relayed shares, then y = encode(update, examples) + PRG(b) ± PRG(s_uv) for v in U2 \\ {u}.

        ``update`` is a flat float vector of the roster's ``vector_length``. Repeating the call with the same update
        gives the same bytes; a different update is refused.
        """
        state = self.state
        self._require(NodeStage.SHARED, NodeStage.MASKED, NodeStage.CONFIRMED, NodeStage.UNMASKED)
        roster = state.roster
        assert roster is not None
        self._check_round(delivery.round_id)
        flat = np.ascontiguousarray(check_input(update, examples, roster.quantisation))
        if flat.size != roster.vector_length:
            raise ProtocolViolation(f"The update has {flat.size} values; the round expects {roster.vector_length}.")
        digest = _digest(flat, examples)
        if state.input_sha256 is not None and state.input_sha256 != digest:
            raise ProtocolViolation("This node already masked a different update in this round; it sends only one.")
        if state.phase == NodeStage.SHARED:
            self._accept_delivery(delivery)
        elif tuple(sorted(set(delivery.senders))) != state.u2:
            raise ProtocolViolation("The coordinator changed the set of nodes after the masked input was made.")
        words = np.empty(flat.size + 1, dtype=roster.quantisation.unsigned)
        encoder = ChunkEncoder(flat, examples, roster.quantisation, words)
        streams = [(masks.self_mask_seed(state.self_seed, state.round_id, state.node_id), +1)]
        mask_private = X25519PrivateKey.from_private_bytes(state.mask_private)
        for peer in state.u2:
            if peer != state.node_id:
                seed = masks.pairwise_seed(mask_private, roster.advertisement(peer).mask_public, state.round_id,
                                           state.node_id, peer)
                streams.append((seed, masks.pairwise_sign(state.node_id, peer)))
        masks.apply_streams(words, streams, before_chunk=encoder)
        state.input_sha256 = digest
        if state.phase == NodeStage.SHARED:
            state.phase = NodeStage.MASKED
        return MaskedInput(round_id=state.round_id, node_id=state.node_id, words=words)

    def _accept_delivery(self, delivery: ShareDelivery) -> None:
        state, roster = self.state, self.state.roster
        assert roster is not None
        if delivery.receiver != state.node_id:
            raise ProtocolViolation("The coordinator delivered another node's shares to this node.")
        u2 = tuple(sorted(set(delivery.senders)))
        if state.node_id not in u2 or not set(u2) <= set(roster.node_ids):
            raise ProtocolViolation("The list of nodes that shared keys is not part of this round's roster.")
        check_set("shared", u2, state.min_nodes)
        if len(u2) < roster.threshold:
            raise ProtocolViolation("Fewer nodes than the threshold shared their keys; the round cannot go on.")
        by_sender = {share.sender: share for share in delivery.shares}
        if set(by_sender) != set(u2) - {state.node_id} or len(by_sender) != len(delivery.shares):
            raise ProtocolViolation("The delivered shares do not match the list of nodes that shared keys.")
        share_private = X25519PrivateKey.from_private_bytes(state.share_private)
        received = {}
        for sender, share in by_sender.items():
            if share.receiver != state.node_id:
                raise ProtocolViolation(f"A share from node {sender} is addressed to another node.")
            seed_share, key_share = decrypt_share(share_private, roster.advertisement(sender).share_public,
                                                  state.round_id, share)
            received[sender] = (hex(seed_share), hex(key_share))
        state.received, state.u2 = received, u2

    # -- consistency_check --------------------------------------------------------------------------------------

    def confirm_survivors(self, survivors: SurvivorList, identity: Ed25519PrivateKey) -> ConsistencySignature:
        """Sign U3 with the identity key, once per round: a retry of the same list returns the same signature, a
        different list is refused (``ConsistencyCheckFailed``), as is a list that is not sorted, not part of this
        node's U2, leaves this node out or has fewer than t nodes."""
        state = self.state
        self._require(NodeStage.MASKED, NodeStage.CONFIRMED, NodeStage.UNMASKED)
        roster = state.roster
        assert roster is not None
        self._check_round(survivors.round_id)
        u3 = survivors.survivors
        if state.u3 is not None:
            if u3 != state.u3:
                raise ConsistencyCheckFailed("The coordinator sent this node a second, different list of surviving "
                                             "nodes for the same round; it signs only one, so it stops here.")
            assert state.confirmation is not None
            return state.confirmation
        if u3 != tuple(sorted(set(u3))):
            raise ConsistencyCheckFailed("The list of surviving nodes is not sorted or names a node twice.")
        if not set(u3) <= set(state.u2):
            raise ConsistencyCheckFailed("The list of surviving nodes names nodes that, as far as this node knows, "
                                         "never shared their keys; the coordinator showed the nodes different rounds.")
        if state.node_id not in u3:
            raise ConsistencyCheckFailed("The list of surviving nodes leaves out this node, whose masked input "
                                         "was sent.")
        if len(u3) < roster.threshold:
            raise ConsistencyCheckFailed(f"Only {len(u3)} nodes survived; at least {roster.threshold} are needed, "
                                         "so nothing is revealed.")
        check_set("survivors", u3, state.min_nodes)  # never sign (and so never unmask for) a U3 below the minimum
        state.u3 = u3
        state.confirmation = sign_survivors(identity, state.round_id, state.node_id, u3)
        state.phase = NodeStage.CONFIRMED
        return state.confirmation

    def _check_consistency(self, request: UnmaskRequest) -> None:
        """U3 of the request is the one this node signed, dropped = U2 \\ U3, and ≥ t distinct U3 nodes signed it."""
        state, roster = self.state, self.state.roster
        assert roster is not None
        if state.u3 is None:
            raise ConsistencyCheckFailed("The coordinator asks for key shares before this node confirmed the list "
                                         "of surviving nodes; it answers only after that check.")
        if request.survivors != state.u3:
            raise ConsistencyCheckFailed("The unmasking request names other survivors than the list this node "
                                         "signed; the coordinator is telling the nodes different stories.")
        if request.dropped != tuple(node for node in state.u2 if node not in state.u3):
            raise ConsistencyCheckFailed("The unmasking request's dropped nodes are not exactly those that shared "
                                         "keys but sent no masked input.")
        signers: set[str] = set()
        for signature in request.signatures:
            if signature.node_id not in state.u3:
                raise ConsistencyCheckFailed(f"Node {signature.node_id} signed the list of survivors but is not "
                                             "on it.")
            if signature.node_id in signers:
                raise ConsistencyCheckFailed(f"The signature of node {signature.node_id} is there twice; each "
                                             "node counts once.")
            verify_survivors(signature, state.identity_keys[signature.node_id], state.round_id, state.u3)
            signers.add(signature.node_id)
        if len(signers) < roster.threshold:
            raise ConsistencyCheckFailed(
                f"Only {len(signers)} nodes confirmed the list of surviving nodes; at least {roster.threshold} must, "
                "so this node reveals nothing."
            )

    # -- unmasking ----------------------------------------------------------------------------------------------

    def unmask(self, request: UnmaskRequest) -> UnmaskResponse:
        """Reveal self-mask-seed shares of survivors and mask-key shares of dropped nodes — never both for one node.

        Raises ``UnmaskRequestRefused`` when the request asks for both kinds for a node (now, or together with an
        earlier request), omits or invents nodes, leaves fewer survivors than the threshold, or lists this node as
        dropped; ``ConsistencyCheckFailed`` unless the survivors are the list this node signed and at least t of them
        signed it too (see ``confirm_survivors``).
        """
        state = self.state
        if state.phase == NodeStage.MASKED:
            raise ConsistencyCheckFailed("The coordinator asks for key shares before this node confirmed the list "
                                         "of surviving nodes; it answers only after that check.")
        self._require(NodeStage.CONFIRMED, NodeStage.UNMASKED)
        roster = state.roster
        assert roster is not None
        self._check_round(request.round_id)
        survivors, dropped = set(request.survivors), set(request.dropped)
        both = survivors & dropped
        if both:
            raise UnmaskRequestRefused(
                f"The coordinator asked for both kinds of key share of node(s) {', '.join(sorted(both))}; that would "
                "reveal an individual update, so this node refuses."
            )
        if survivors | dropped != set(state.u2) or len(survivors) != len(request.survivors):
            raise UnmaskRequestRefused("The unmasking request does not cover exactly the nodes that shared keys.")
        if state.node_id not in survivors:
            raise UnmaskRequestRefused("The unmasking request lists this node as dropped although it is answering.")
        check_set("survivors", survivors, state.min_nodes)
        if len(survivors) < roster.threshold:
            raise UnmaskRequestRefused(
                f"Only {len(survivors)} nodes survived; at least {roster.threshold} are needed, so nothing is revealed."
            )
        wanted: dict[str, ShareKind] = {node: "self_mask" for node in survivors}
        wanted |= {node: "mask_key" for node in dropped}
        conflicts = sorted(node for node, kind in wanted.items() if state.revealed.get(node, kind) != kind)
        if conflicts:
            raise UnmaskRequestRefused(
                f"This node already revealed the other kind of share of node(s) {', '.join(conflicts)}; answering "
                "would reveal an individual update, so it refuses."
            )
        self._check_consistency(request)
        assert state.own_shares is not None
        shares = dict(state.received) | {state.node_id: state.own_shares}
        self_mask = {node: shamir.share_to_bytes(int(shares[node][0], 16)) for node in sorted(survivors)}
        mask_key = {node: shamir.share_to_bytes(int(shares[node][1], 16)) for node in sorted(dropped)}
        state.revealed |= wanted
        state.phase = NodeStage.UNMASKED
        return UnmaskResponse(round_id=state.round_id, sender=state.node_id, self_mask_shares=self_mask,
                              mask_key_shares=mask_key)
