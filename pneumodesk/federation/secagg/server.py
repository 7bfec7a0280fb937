"""The coordinator's side of one secure-aggregation round: an explicit phase machine, no I/O.

Flow (the coordinator calls these as requests arrive and as deadlines pass; ``close_*`` moves to the next phase):

    server = SecAggServer(round_id, identity_keys, vector_length, quantisation, threshold=None)
    advertise_keys: server.receive_advertisement(msg) … ; roster = server.close_advertising()   → send roster to U1
    share_keys:     server.receive_shares(msg) … ;  server.close_sharing(); server.delivery_for(node) → to each of U2
    masked_input:   server.receive_masked_input(msg) … ; survivors = server.close_masking()     → send to U3
    consistency:    server.receive_signature(msg) … ; request = server.close_consistency()     → send to U4
    unmasking:      server.receive_unmask(msg) … ;  result = server.finish()                     → done

Invariants: the server holds the running sum of masked inputs, never an unmasked individual one; every phase needs
at least ``threshold`` nodes, otherwise the round moves to ``failed``, the sum and all shares are discarded and
``TooFewSurvivors`` is raised — no unmasking request is ever issued with fewer than t survivors; a second, different
message from a node in the same phase is refused, an identical one is accepted as a retry; the unmasking request
carries the survivors' signatures on U3 (at least t, each checked against the signer's enrolled key), which every
node checks before it reveals a share.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

import numpy as np
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from . import masks, shamir
from .errors import ProtocolViolation, ReconstructionFailed, SecAggError, TooFewSurvivors
from .keys import verify_advertisement, verify_survivors
from .messages import (
    AggregateResult,
    ConsistencySignature,
    KeyAdvertisement,
    KeyRoster,
    MaskedInput,
    ServerStage,
    ShareDelivery,
    ShareKeysMessage,
    SurvivorList,
    UnmaskRequest,
    UnmaskResponse,
)
from .quantise import QuantisationSpec, decode


def default_threshold(nodes: int) -> int:
    """A strict majority: the smallest t with 2t > n (Bonawitz et al.'s bound against an honest-but-curious server)."""
    return nodes // 2 + 1


class SecAggServer:
    def __init__(self, round_id: str, identity_keys: Mapping[str, bytes], vector_length: int,
                 quantisation: QuantisationSpec, threshold: int | None = None) -> None:
        """``identity_keys``: node id → enrolled raw Ed25519 public key of every node allowed in the round;
        ``threshold``: t, or ``None`` for a strict majority of the nodes that advertise keys."""
        self.round_id = round_id
        self.vector_length = vector_length
        self.quantisation = quantisation
        self._identity_keys = dict(identity_keys)
        self._requested_threshold = threshold
        self.threshold: int | None = None
        self.phase = ServerStage.ADVERTISE_KEYS
        self.failure: str | None = None
        self._advertisements: dict[str, KeyAdvertisement] = {}
        self.roster: KeyRoster | None = None
        self._shares: dict[str, ShareKeysMessage] = {}
        self.u2: tuple[str, ...] = ()
        self._masked_sum: np.ndarray | None = None
        self._masked_from: dict[str, bytes] = {}  # node → sha256 of its masked input, to recognise retries
        self.survivor_list: SurvivorList | None = None
        self._signatures: dict[str, ConsistencySignature] = {}
        self.unmask_request: UnmaskRequest | None = None
        self._unmask: dict[str, UnmaskResponse] = {}
        self.result: AggregateResult | None = None

    # -- helpers ------------------------------------------------------------------------------------------------

    def _require(self, phase: ServerStage) -> None:
        if self.phase == ServerStage.FAILED:
            raise TooFewSurvivors(f"The secure round has failed ({self.failure}).")
        if self.phase != phase:
            raise ProtocolViolation(f"The secure round is in phase {self.phase.value}, not {phase.value}.")

    def _check_round(self, round_id: str) -> None:
        if round_id != self.round_id:
            raise ProtocolViolation("The message belongs to another round.")

    def fail(self, reason: str) -> None:
        """Move to ``failed`` and forget everything that could help reveal an input."""
        self.phase, self.failure = ServerStage.FAILED, reason
        self._masked_sum, self._unmask, self._shares = None, {}, {}

    def _enough(self, count: int, what: str) -> None:
        assert self.threshold is not None
        if count < self.threshold:
            reason = f"only {count} nodes {what}; at least {self.threshold} are needed"
            self.fail(reason)
            raise TooFewSurvivors(f"The secure round failed: {reason}. Nothing about any update was revealed.")

    @property
    def u1(self) -> tuple[str, ...]:
        return self.roster.node_ids if self.roster else tuple(sorted(self._advertisements))

    @property
    def u3(self) -> tuple[str, ...]:
        return tuple(sorted(self._masked_from))

    # -- advertise_keys -----------------------------------------------------------------------------------------

    def receive_advertisement(self, advertisement: KeyAdvertisement) -> None:
        self._require(ServerStage.ADVERTISE_KEYS)
        node = advertisement.node_id
        if node not in self._identity_keys:
            raise ProtocolViolation(f"Node {node} is not a member allowed in this round.")
        verify_advertisement(advertisement, self._identity_keys[node], self.round_id)
        previous = self._advertisements.get(node)
        if previous is not None and previous != advertisement:
            raise ProtocolViolation(f"Node {node} already advertised different keys for this round.")
        self._advertisements[node] = advertisement

    def close_advertising(self) -> KeyRoster:
        self._require(ServerStage.ADVERTISE_KEYS)
        count = len(self._advertisements)
        threshold = self._requested_threshold or default_threshold(count)
        if count < 2 or not count / 2 < threshold <= count:
            threshold = max(threshold, default_threshold(count), 2)
        self.threshold = threshold
        self._enough(count, "advertised keys")
        self.roster = KeyRoster(
            round_id=self.round_id, threshold=threshold, vector_length=self.vector_length,
            quantisation=self.quantisation,
            advertisements=tuple(self._advertisements[node] for node in sorted(self._advertisements)),
        )
        self.phase = ServerStage.SHARE_KEYS
        return self.roster

    # -- share_keys ---------------------------------------------------------------------------------------------

    def receive_shares(self, message: ShareKeysMessage) -> None:
        self._require(ServerStage.SHARE_KEYS)
        self._check_round(message.round_id)
        assert self.roster is not None
        sender = message.sender
        if sender not in self.roster.node_ids:
            raise ProtocolViolation(f"Node {sender} did not advertise keys in this round.")
        receivers = [share.receiver for share in message.shares]
        if sorted(receivers) != sorted(set(self.roster.node_ids) - {sender}) or any(
            share.sender != sender for share in message.shares
        ):
            raise ProtocolViolation(f"Node {sender} must send exactly one share to every other node of the roster.")
        previous = self._shares.get(sender)
        if previous is not None and previous != message:
            raise ProtocolViolation(f"Node {sender} already sent different shares in this round.")
        self._shares[sender] = message

    def close_sharing(self) -> tuple[str, ...]:
        """Fix U2 (the nodes whose shares are relayed); afterwards ``delivery_for`` serves each of them."""
        self._require(ServerStage.SHARE_KEYS)
        self._enough(len(self._shares), "shared their keys")
        self.u2 = tuple(sorted(self._shares))
        self.phase = ServerStage.MASKED_INPUT
        return self.u2

    def delivery_for(self, node_id: str) -> ShareDelivery:
        if self.phase not in (ServerStage.MASKED_INPUT, ServerStage.CONSISTENCY_CHECK, ServerStage.UNMASKING,
                              ServerStage.DONE):
            self._require(ServerStage.MASKED_INPUT)
        if node_id not in self.u2:
            raise ProtocolViolation(f"Node {node_id} did not share its keys in time and is out of this round.")
        shares = tuple(share for sender in self.u2 if sender != node_id
                       for share in self._shares[sender].shares if share.receiver == node_id)
        return ShareDelivery(round_id=self.round_id, receiver=node_id, senders=self.u2, shares=shares)

    # -- masked_input -------------------------------------------------------------------------------------------

    def receive_masked_input(self, masked: MaskedInput, sha256: bytes | None = None) -> bool:
        """Add a masked input to the running sum; ``False`` when it is an identical retry (not counted again).

        ``sha256``: the digest of the input's words, when the caller already has one (saves hashing them again).
        """
        self._require(ServerStage.MASKED_INPUT)
        self._check_round(masked.round_id)
        node = masked.node_id
        if node not in self.u2:
            raise ProtocolViolation(f"Node {node} did not share its keys and cannot send a masked input.")
        spec = self.quantisation
        if masked.words.size != self.vector_length + 1 or masked.words.dtype.itemsize != spec.word_bytes:
            raise ProtocolViolation(
                f"The masked input from node {node} has the wrong size or word width for this round."
            )
        fingerprint = sha256 or hashlib.sha256(np.ascontiguousarray(masked.words).data.cast("B")).digest()
        if node in self._masked_from:
            if self._masked_from[node] != fingerprint:
                raise ProtocolViolation(f"Node {node} already sent a different masked input in this round.")
            return False
        if self._masked_sum is None:
            self._masked_sum = np.zeros(self.vector_length + 1, dtype=spec.unsigned)
        np.add(self._masked_sum, masked.words, out=self._masked_sum)
        self._masked_from[node] = fingerprint
        return True

    def close_masking(self) -> SurvivorList:
        """Fix U3 (the nodes whose masked input is in the sum); each of them is asked to sign it."""
        self._require(ServerStage.MASKED_INPUT)
        self._enough(len(self._masked_from), "sent a masked input")
        self.survivor_list = SurvivorList(round_id=self.round_id, survivors=self.u3)
        self.phase = ServerStage.CONSISTENCY_CHECK
        return self.survivor_list

    # -- consistency_check --------------------------------------------------------------------------------------

    def receive_signature(self, signature: ConsistencySignature) -> None:
        self._require(ServerStage.CONSISTENCY_CHECK)
        self._check_round(signature.round_id)
        node = signature.node_id
        if node not in self._masked_from:
            raise ProtocolViolation(f"Node {node} sent no masked input and has nothing to confirm.")
        try:
            verify_survivors(signature, self._identity_keys[node], self.round_id, self.u3)
        except SecAggError as error:
            raise ProtocolViolation(str(error)) from None
        previous = self._signatures.get(node)
        if previous is not None and previous != signature:
            raise ProtocolViolation(f"Node {node} already sent a different signature in this round.")
        self._signatures[node] = signature

    @property
    def u4(self) -> tuple[str, ...]:
        return tuple(sorted(self._signatures))

    def close_consistency(self) -> UnmaskRequest:
        """With at least t signatures on U3: the unmasking request (U3, U2 \\ U3 and the signatures) for U4."""
        self._require(ServerStage.CONSISTENCY_CHECK)
        self._enough(len(self._signatures), "confirmed the list of survivors")
        dropped = tuple(node for node in self.u2 if node not in self._masked_from)
        self.unmask_request = UnmaskRequest(round_id=self.round_id, survivors=self.u3, dropped=dropped,
                                            signatures=tuple(self._signatures[node] for node in self.u4))
        self.phase = ServerStage.UNMASKING
        return self.unmask_request

    # -- unmasking ----------------------------------------------------------------------------------------------

    def receive_unmask(self, response: UnmaskResponse) -> None:
        self._require(ServerStage.UNMASKING)
        self._check_round(response.round_id)
        request = self.unmask_request
        assert request is not None
        if response.sender not in self._signatures:
            raise ProtocolViolation(f"Node {response.sender} did not confirm the survivors of this round.")
        if set(response.self_mask_shares) != set(request.survivors) or set(response.mask_key_shares) != set(
            request.dropped
        ):
            raise ProtocolViolation(f"Node {response.sender} did not answer the unmasking request as asked.")
        previous = self._unmask.get(response.sender)
        if previous is not None and previous != response:
            raise ProtocolViolation(f"Node {response.sender} already sent different shares.")
        self._unmask[response.sender] = response

    def finish(self) -> AggregateResult:
        """Reconstruct the survivors' self-mask seeds and the dropped nodes' mask keys, unmask, decode the mean."""
        self._require(ServerStage.UNMASKING)
        self._enough(len(self._unmask), "answered the unmasking request")
        roster, request, total = self.roster, self.unmask_request, self._masked_sum
        assert roster is not None and request is not None and total is not None and self.threshold is not None
        try:
            streams = [(masks.self_mask_seed(self._reconstruct(node, "self_mask"), self.round_id, node), -1)
                       for node in request.survivors]
            for dropped in request.dropped:
                private = X25519PrivateKey.from_private_bytes(self._reconstruct(dropped, "mask_key"))
                if private.public_key().public_bytes_raw() != roster.advertisement(dropped).mask_public:
                    raise ReconstructionFailed(f"The revealed key shares of node {dropped} do not match its keys.")
                for survivor in request.survivors:
                    seed = masks.pairwise_seed(private, roster.advertisement(survivor).mask_public, self.round_id,
                                               survivor, dropped)
                    streams.append((seed, -masks.pairwise_sign(survivor, dropped)))
            masks.apply_streams(total, streams)
            mean, count = decode(total, self.quantisation)
        except SecAggError as error:
            self.fail(str(error))
            raise
        self.result = AggregateResult(mean=mean, total_examples=count, contributors=request.survivors,
                                      dropped=request.dropped, error_bound=self.quantisation.error_bound)
        self._masked_sum, self._unmask, self.phase = None, {}, ServerStage.DONE
        return self.result

    def _reconstruct(self, node: str, kind: str) -> bytes:
        assert self.roster is not None and self.threshold is not None
        points = {}
        for sender, response in self._unmask.items():
            table = response.self_mask_shares if kind == "self_mask" else response.mask_key_shares
            points[self.roster.position(sender)] = shamir.share_from_bytes(table[node])
        return shamir.reconstruct(points, self.threshold)
