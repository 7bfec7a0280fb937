"""Secure aggregation against a coordinator that lies: a scripted malicious server drives the real node code.

Every attack must fail at the nodes with a typed ``SecAggError`` whose message is a plain sentence, and nothing the
attacker collected may reveal an individual update.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from pneumodesk.federation.secagg import (
    ConsistencyCheckFailed,
    ConsistencySignature,
    KeyRoster,
    KeySubstitutionDetected,
    ProtocolViolation,
    QuantisationSpec,
    SecAggError,
    SecAggNode,
    SecAggServer,
    ShareDelivery,
    ShareKeysMessage,
    SurvivorList,
    UnmaskRequest,
    UnmaskRequestRefused,
    UnmaskResponse,
    decode,
    masks,
    shamir,
)
from pneumodesk.federation.secagg.keys import sign_survivors

ROUND = "federation-x/plan-abc/round-7"
LENGTH = 12


class Coordinator:
    """A malicious coordinator: runs the honest server up to the shares, then crafts each node's view itself."""

    def __init__(self, n: int, threshold: int | None = None) -> None:
        self.ids = [f"hospital-{i:02d}" for i in range(n)]
        self.identities = {node: Ed25519PrivateKey.generate() for node in self.ids}
        self.public = {node: key.public_key().public_bytes_raw() for node, key in self.identities.items()}
        self.spec = QuantisationSpec.for_round(max_nodes=n, clip=1.0, max_examples=1000)
        self.server = SecAggServer(ROUND, self.public, LENGTH, self.spec, threshold)
        self.nodes = {node: SecAggNode.begin(ROUND, node, self.identities[node]) for node in self.ids}
        rng = np.random.default_rng(n)
        self.updates = {node: rng.uniform(-1, 1, LENGTH) for node in self.ids}
        self.counts = {node: int(rng.integers(1, 1000)) for node in self.ids}
        for node in self.nodes.values():
            self.server.receive_advertisement(node.advertisement)
        self.roster: KeyRoster = self.server.close_advertising()
        self.threshold = self.roster.threshold
        self.sent: dict[str, ShareKeysMessage] = {}
        for node in self.ids:
            self.sent[node] = self.nodes[node].share_keys(self.roster, self.public)
        self.masked: dict[str, np.ndarray] = {}
        self.answers: dict[str, UnmaskResponse] = {}
        self.refusals: dict[str, SecAggError] = {}

    def delivery(self, receiver: str, senders: list[str]) -> ShareDelivery:
        shares = tuple(share for sender in senders if sender != receiver
                       for share in self.sent[sender].shares if share.receiver == receiver)
        return ShareDelivery(round_id=ROUND, receiver=receiver, senders=tuple(sorted(senders)), shares=shares)

    def mask(self, views: dict[str, list[str]]) -> None:
        """Each node gets its own U2 (``views``) and sends its masked input."""
        for node, u2 in views.items():
            words = self.nodes[node].masked_input(self.delivery(node, u2), self.updates[node], self.counts[node])
            self.masked[node] = words.words.copy()

    def ask(self, node: str, survivors: list[str], dropped: list[str],
            signatures: tuple[ConsistencySignature, ...] = ()) -> None:
        """Send one node an unmasking request; record its answer, or the typed error it refused with."""
        try:
            request = UnmaskRequest(round_id=ROUND, survivors=tuple(sorted(survivors)),
                                    dropped=tuple(sorted(dropped)), signatures=signatures)
            self.answers[node] = self.nodes[node].unmask(request)
        except SecAggError as error:
            self.refusals[node] = error

    def confirm(self, node: str, survivors: list[str]) -> ConsistencySignature | None:
        """Ask one node to sign a survivor list; its signature, or None (its refusal recorded)."""
        try:
            return self.nodes[node].confirm_survivors(
                SurvivorList(round_id=ROUND, survivors=tuple(sorted(survivors))), self.identities[node])
        except SecAggError as error:
            self.refusals[node] = error
            return None

    def reconstruct(self, target: str, kind: str) -> bytes | None:
        """The secret of ``target`` from every share of that kind the attacker collected (None: too few)."""
        points = {}
        for sender, answer in self.answers.items():
            table = answer.self_mask_shares if kind == "self_mask" else answer.mask_key_shares
            if target in table:
                points[self.roster.position(sender)] = shamir.share_from_bytes(table[target])
        if len(points) < self.threshold:
            return None
        return shamir.reconstruct(points, self.threshold)

    def unmask_alone(self, victim: str, victim_u2: list[str]) -> np.ndarray | None:
        """The victim's update alone from its masked input, when the collected shares allow it."""
        seed = self.reconstruct(victim, "self_mask")
        if seed is None:
            return None
        words = self.masked[victim].copy()
        streams = [(masks.self_mask_seed(seed, ROUND, victim), -1)]
        for peer in victim_u2:
            if peer == victim:
                continue
            key = self.reconstruct(peer, "mask_key")
            if key is None:
                return None
            private = X25519PrivateKey.from_private_bytes(key)
            pair = masks.pairwise_seed(private, self.roster.advertisement(victim).mask_public, ROUND, victim, peer)
            streams.append((pair, -masks.pairwise_sign(victim, peer)))
        masks.apply_streams(words, streams)
        mean, _count = decode(words, self.spec)
        return mean


def split_view_attack(coordinator: Coordinator, forward: str) -> tuple[str, np.ndarray | None]:
    """Issue 13's attack: the victim X gets U2 = {X, P1…P(t−1)}; every other node is told that X survived and some
    Pi dropped, so that t shares of X's self-mask seed and t mask-key shares of every Pi could be collected.

    The coordinator runs the consistency round as well as a liar can: each node signs the survivor list of its own
    view; ``forward`` = "matching" sends each node the signatures on its own list, "all" every signature collected."""
    ids, t = coordinator.ids, coordinator.threshold
    victim, peers, others = ids[0], ids[1:t], ids[t:]
    victim_u2 = [victim, *peers]
    coordinator.mask({victim: victim_u2} | {node: list(ids) for node in ids[1:]})
    requests: dict[str, tuple[list[str], list[str]]] = {}
    for peer in peers:  # Pj survives, every other Pi dropped
        dropped = [p for p in peers if p != peer]
        requests[peer] = ([node for node in ids if node not in dropped], dropped)
    for k, other in enumerate(others):  # as many Pi dropped as t survivors allow, rotating which one survives
        room = len(ids) - t
        kept = [peers[(k + i) % len(peers)] for i in range(len(peers) - min(room, len(peers)))]
        dropped = [p for p in peers if p not in kept]
        requests[other] = ([node for node in ids if node not in dropped], dropped)
    signed = {node: coordinator.confirm(node, survivors) for node, (survivors, _dropped) in requests.items()}
    for node, (survivors, dropped) in requests.items():
        signatures = tuple(sig for other, sig in signed.items() if sig is not None and (
            forward == "all" or sorted(requests[other][0]) == sorted(survivors)))
        coordinator.ask(node, survivors, dropped, signatures=signatures)
    return victim, coordinator.unmask_alone(victim, victim_u2)


@pytest.mark.parametrize("forward", ["matching", "all"])
@pytest.mark.parametrize(("n", "t"), [(5, 3), (10, 6)])
def test_split_view_attack_fails_at_the_nodes(n: int, t: int, forward: str) -> None:
    coordinator = Coordinator(n, threshold=t)
    assert coordinator.threshold == t
    _victim, recovered = split_view_attack(coordinator, forward)
    assert recovered is None
    assert not coordinator.answers, "a node answered a crafted unmasking request"
    assert set(coordinator.refusals) == set(coordinator.ids[1:])
    assert all(isinstance(error, ConsistencyCheckFailed) and str(error).endswith(".")
               for error in coordinator.refusals.values())


def honest_until_confirmed(n: int = 5, *, masked: list[str] | None = None) -> tuple[Coordinator, UnmaskRequest]:
    """Everyone masks with the full U2 and signs the true U3; the genuine unmasking request with every signature."""
    coordinator = Coordinator(n)
    survivors = masked or coordinator.ids
    coordinator.mask({node: list(coordinator.ids) for node in survivors})
    signatures = tuple(coordinator.confirm(node, survivors) for node in survivors)
    assert all(signatures)
    request = UnmaskRequest(round_id=ROUND, survivors=tuple(sorted(survivors)),
                            dropped=tuple(node for node in coordinator.ids if node not in survivors),
                            signatures=tuple(sig for sig in signatures if sig is not None))
    return coordinator, request


def refuse(error: type[SecAggError], call: Callable[[], object], match: str) -> None:
    with pytest.raises(error, match=match) as caught:
        call()
    assert str(caught.value).endswith(".")


def test_an_honest_round_still_answers() -> None:
    coordinator, request = honest_until_confirmed(masked=["hospital-00", "hospital-01", "hospital-02", "hospital-04"])
    answer = coordinator.nodes["hospital-00"].unmask(request)
    assert set(answer.self_mask_shares) == set(request.survivors) and set(answer.mask_key_shares) == {"hospital-03"}


def test_a_fake_drop_out_is_refused_by_the_node_left_out_and_reveals_nothing_of_it() -> None:
    coordinator = Coordinator(5)
    ids, target = coordinator.ids, "hospital-04"
    coordinator.mask({node: list(ids) for node in ids})  # every masked input arrived
    liars_list = [node for node in ids if node != target]
    refuse(ConsistencyCheckFailed, lambda: coordinator.nodes[target].confirm_survivors(
        SurvivorList(round_id=ROUND, survivors=tuple(liars_list)), coordinator.identities[target]),
        "leaves out this node")
    signatures = tuple(sig for node in liars_list if (sig := coordinator.confirm(node, liars_list)) is not None)
    for node in liars_list:
        coordinator.ask(node, liars_list, [target], signatures=signatures)
    assert coordinator.reconstruct(target, "self_mask") is None  # its mask key alone does not unmask its input
    # Asking afterwards for its self-mask seed as if it had survived is refused by every node.
    coordinator.answers.clear()
    for node in liars_list:
        coordinator.ask(node, ids, [], signatures=signatures)
    assert not coordinator.answers and all(isinstance(e, SecAggError) for e in coordinator.refusals.values())


def test_a_second_survivor_list_is_never_signed_even_after_a_restart() -> None:
    coordinator, request = honest_until_confirmed()
    node = coordinator.nodes["hospital-01"]
    first = SurvivorList(round_id=ROUND, survivors=request.survivors)
    restarted = SecAggNode.from_bytes(node.to_bytes())
    assert restarted.confirm_survivors(first, coordinator.identities["hospital-01"]) == request.signatures[1]
    other = SurvivorList(round_id=ROUND, survivors=request.survivors[:-1])
    refuse(ConsistencyCheckFailed, lambda: restarted.confirm_survivors(other, coordinator.identities["hospital-01"]),
           "second, different list")


def test_both_share_requests_across_restarts_are_refused() -> None:
    coordinator, request = honest_until_confirmed(masked=["hospital-00", "hospital-01", "hospital-02", "hospital-04"])
    node = coordinator.nodes["hospital-00"]
    node.unmask(request)  # hospital-03's mask-key share revealed
    restarted = SecAggNode.from_bytes(node.to_bytes())
    everyone = request.model_copy(update={"survivors": tuple(coordinator.ids), "dropped": ()})
    refuse(UnmaskRequestRefused, lambda: restarted.unmask(everyone), "already revealed the other kind")
    assert restarted.unmask(request) == node.unmask(request)


@pytest.mark.parametrize("tamper", ["flipped", "duplicated", "too_few", "outsider", "relabelled", "other_round"])
def test_forged_or_duplicated_consistency_signatures_are_refused(tamper: str) -> None:
    coordinator, request = honest_until_confirmed(masked=["hospital-00", "hospital-01", "hospital-02", "hospital-04"])
    sigs, t = list(request.signatures), coordinator.threshold
    outsider_key = coordinator.identities["hospital-03"]  # dropped: its signature must not count
    forged = {
        "flipped": [sigs[0].model_copy(update={"signature": bytes([sigs[0].signature[0] ^ 1]) + sigs[0].signature[1:]}),
                    *sigs[1:]],
        "duplicated": [sigs[0]] * t,
        "too_few": sigs[: t - 1],
        "outsider": [*sigs[: t - 1], sign_survivors(outsider_key, ROUND, "hospital-03", request.survivors)],
        "relabelled": [*sigs[: t - 1], sigs[0].model_copy(update={"node_id": sigs[t - 1].node_id})],
        "other_round": [*sigs[: t - 1], sign_survivors(coordinator.identities[sigs[t - 1].node_id], "other-round",
                                                      sigs[t - 1].node_id, request.survivors)],
    }[tamper]
    bad = request.model_copy(update={"signatures": tuple(forged)})
    refuse(ConsistencyCheckFailed, lambda: coordinator.nodes["hospital-02"].unmask(bad), ".")
    assert coordinator.nodes["hospital-02"].unmask(request).sender == "hospital-02"  # the genuine one still answers


def test_replayed_and_reordered_messages_are_refused() -> None:
    coordinator = Coordinator(5)
    ids, node = coordinator.ids, coordinator.nodes["hospital-00"]
    identity = coordinator.identities["hospital-00"]
    early = SurvivorList(round_id=ROUND, survivors=tuple(ids))
    refuse(ProtocolViolation, lambda: node.confirm_survivors(early, identity), "cannot do that now")
    coordinator.mask({name: list(ids) for name in ids})
    premature = UnmaskRequest(round_id=ROUND, survivors=tuple(ids), dropped=())
    refuse(ConsistencyCheckFailed, lambda: node.unmask(premature), "before this node confirmed")
    replayed = SurvivorList(round_id="federation-x/plan-abc/round-6", survivors=tuple(ids))
    refuse(ProtocolViolation, lambda: node.confirm_survivors(replayed, identity), "another round")
    unsorted = SurvivorList(round_id=ROUND, survivors=tuple(reversed(ids)))
    refuse(ConsistencyCheckFailed, lambda: node.confirm_survivors(unsorted, identity), "not sorted")
    stranger = SurvivorList(round_id=ROUND, survivors=(*ids, "hospital-99"))
    refuse(ConsistencyCheckFailed, lambda: node.confirm_survivors(stranger, identity), "never shared")
    few = SurvivorList(round_id=ROUND, survivors=tuple(ids[:2]))
    refuse(ConsistencyCheckFailed, lambda: node.confirm_survivors(few, identity), "at least 3")
    signatures = tuple(sig for name in ids if (sig := coordinator.confirm(name, ids)) is not None)
    genuine = UnmaskRequest(round_id=ROUND, survivors=tuple(ids), dropped=(), signatures=signatures)
    wrong_dropped = genuine.model_copy(update={"survivors": tuple(ids[:4]), "dropped": ("hospital-04",)})
    refuse(ConsistencyCheckFailed, lambda: node.unmask(wrong_dropped), "other survivors")
    refuse(ProtocolViolation, lambda: node.unmask(genuine.model_copy(update={"round_id": "other"})), "another round")
    assert node.unmask(genuine).sender == "hospital-00"


def test_substituted_round_keys_are_detected_before_any_share_leaves() -> None:
    coordinator = Coordinator(4)
    roster = coordinator.roster
    fresh = SecAggNode.begin(ROUND, "hospital-00", coordinator.identities["hospital-00"])
    impostor = SecAggNode.begin(ROUND, "hospital-02", Ed25519PrivateKey.generate()).advertisement
    swapped = roster.model_copy(update={"advertisements": tuple(
        impostor if item.node_id == "hospital-02" else fresh.advertisement if item.node_id == "hospital-00" else item
        for item in roster.advertisements)})
    refuse(KeySubstitutionDetected, lambda: fresh.share_keys(swapped, coordinator.public), "hospital-02")
