"""Secure aggregation end to end in process: exact sums, drop-outs, clean failure, refusals, detected substitution."""

from __future__ import annotations

import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from pneumodesk.federation import fedavg
from pneumodesk.federation.secagg import (
    ConsistencyCheckFailed,
    ConsistencySignature,
    EncryptedShare,
    KeyAdvertisement,
    KeyRoster,
    KeySubstitutionDetected,
    MaskedInput,
    ProtocolViolation,
    QuantisationSpec,
    SecAggNode,
    SecAggServer,
    ServerStage,
    ShareDecryptionFailed,
    ShareDelivery,
    SurvivorList,
    TooFewSurvivors,
    UnmaskRequest,
    UnmaskRequestRefused,
    default_threshold,
    shamir,
)
from pneumodesk.federation.secagg.simulation import simulate_round

ROUND = "federation-x/plan-abc/round-1"


class Cohort:
    """n real nodes and a real server; each step sends every message through its wire encoding."""

    def __init__(self, n: int, length: int = 16, threshold: int | None = None) -> None:
        self.ids = [f"hospital-{i:02d}" for i in range(n)]
        self.identities = {node: Ed25519PrivateKey.generate() for node in self.ids}
        self.public = {node: key.public_key().public_bytes_raw() for node, key in self.identities.items()}
        self.spec = QuantisationSpec.for_round(max_nodes=n, clip=1.0, max_examples=1000)
        self.server = SecAggServer(ROUND, self.public, length, self.spec, threshold)
        self.nodes = {node: SecAggNode.begin(ROUND, node, self.identities[node]) for node in self.ids}
        rng = np.random.default_rng(n)
        self.updates = {node: rng.uniform(-1, 1, length) for node in self.ids}
        self.counts = {node: int(rng.integers(1, 1000)) for node in self.ids}

    def advertise(self) -> KeyRoster:
        for node in self.nodes.values():
            self.server.receive_advertisement(KeyAdvertisement.model_validate_json(node.advertisement.model_dump_json()))
        return self.server.close_advertising()

    def share(self, roster: KeyRoster, who: list[str] | None = None) -> None:
        for node in who or self.ids:
            self.server.receive_shares(self.nodes[node].share_keys(roster, self.public))
        self.server.close_sharing()

    def mask(self, who: list[str]) -> None:
        for node in who:
            delivery = self.server.delivery_for(node)
            masked = self.nodes[node].masked_input(delivery, self.updates[node], self.counts[node])
            self.server.receive_masked_input(MaskedInput.from_bytes(masked.to_bytes()))

    def confirm(self, who: list[str]) -> UnmaskRequest:
        """Close masking; ``who`` sign the survivor list (through the wire); the unmasking request with signatures."""
        survivors = SurvivorList.model_validate_json(self.server.close_masking().model_dump_json())
        for node in who:
            signature = self.nodes[node].confirm_survivors(survivors, self.identities[node])
            self.server.receive_signature(ConsistencySignature.model_validate_json(signature.model_dump_json()))
        return UnmaskRequest.model_validate_json(self.server.close_consistency().model_dump_json())

    def expected(self, who: list[str]) -> np.ndarray:
        return fedavg(({"w": self.updates[node]}, self.counts[node]) for node in who)["w"]


@settings(max_examples=25, deadline=None)
@given(n=st.integers(3, 10), length=st.integers(1, 64), data=st.data())
def test_secure_sum_equals_fedavg_with_dropouts(n: int, length: int, data: st.DataObject) -> None:
    ids = [f"node-{i}" for i in range(n)]
    updates = {node: np.array(data.draw(st.lists(st.floats(-1, 1), min_size=length, max_size=length))) for node in ids}
    counts = {node: data.draw(st.integers(1, 2000)) for node in ids}
    spec = QuantisationSpec.for_round(max_nodes=n, clip=1.0, max_examples=2000)
    dropped = data.draw(st.lists(st.sampled_from(ids), max_size=n - default_threshold(n), unique=True))
    after_sharing = set(data.draw(st.lists(st.sampled_from(dropped), unique=True))) if dropped else set()
    after_masking = set(dropped) - after_sharing
    result, _ = simulate_round(updates, counts, spec, drop_after_sharing=after_sharing,
                                   drop_after_masking=after_masking)
    included = [node for node in ids if node not in after_sharing]  # inputs uploaded before vanishing still count
    expected = fedavg(({"w": updates[node]}, counts[node]) for node in included)["w"]
    assert result.contributors == tuple(included) and set(result.dropped) == after_sharing
    assert result.total_examples == sum(counts[node] for node in included)
    assert np.max(np.abs(result.mean - expected)) <= spec.error_bound + 1e-12


def test_dropouts_after_sharing_and_after_masking_up_to_n_minus_t() -> None:
    cohort = Cohort(7)  # t = 4: three may vanish
    roster = cohort.advertise()
    assert roster.threshold == 4
    cohort.share(roster)
    cohort.mask(cohort.ids[:5])  # hospital-05 and -06 vanish after key sharing
    survivors = cohort.server.close_masking()
    assert cohort.server.delivery_for("hospital-04").senders == cohort.server.u2  # a restarted node fetches it again
    for node in survivors.survivors:
        cohort.server.receive_signature(cohort.nodes[node].confirm_survivors(survivors, cohort.identities[node]))
    request = cohort.server.close_consistency()
    assert request.dropped == ("hospital-05", "hospital-06") and len(request.signatures) == 5
    for node in cohort.ids[:4]:  # hospital-04 vanishes after its masked input
        cohort.server.receive_unmask(cohort.nodes[node].unmask(request))
    result = cohort.server.finish()
    assert cohort.server.phase == ServerStage.DONE
    assert np.max(np.abs(result.mean - cohort.expected(cohort.ids[:5]))) <= cohort.spec.error_bound


def test_fewer_than_t_masked_inputs_fail_cleanly_without_an_unmasking_request() -> None:
    cohort = Cohort(5)  # t = 3
    cohort.share(cohort.advertise())
    cohort.mask(cohort.ids[:2])
    with pytest.raises(TooFewSurvivors, match="only 2 nodes sent a masked input; at least 3"):
        cohort.server.close_masking()
    assert cohort.server.phase == ServerStage.FAILED and cohort.server.unmask_request is None
    with pytest.raises(TooFewSurvivors):
        cohort.server.receive_masked_input(MaskedInput(ROUND, "hospital-04", np.zeros(17, np.uint32)))


def test_fewer_than_t_unmasking_answers_fail_and_discard_the_masked_sum() -> None:
    cohort = Cohort(5)
    cohort.share(cohort.advertise())
    cohort.mask(cohort.ids)
    request = cohort.confirm(cohort.ids)
    for node in cohort.ids[:2]:
        cohort.server.receive_unmask(cohort.nodes[node].unmask(request))
    with pytest.raises(TooFewSurvivors, match="answered the unmasking request"):
        cohort.server.finish()
    assert cohort.server.result is None and cohort.server._masked_sum is None


def test_fewer_than_t_advertisers_or_sharers_fail() -> None:
    cohort = Cohort(5, threshold=4)
    cohort.share_roster = cohort.advertise()
    for node in cohort.ids[:3]:
        cohort.server.receive_shares(cohort.nodes[node].share_keys(cohort.share_roster, cohort.public))
    with pytest.raises(TooFewSurvivors, match="shared their keys"):
        cohort.server.close_sharing()


def test_a_request_for_both_kinds_of_share_of_one_node_is_refused() -> None:
    cohort = Cohort(5)
    cohort.share(cohort.advertise())
    survivors = cohort.ids[:3] + cohort.ids[4:]  # hospital-03 vanishes after sharing
    cohort.mask(survivors)
    first = cohort.confirm(survivors)
    node = cohort.nodes["hospital-00"]
    greedy = first.model_copy(update={"survivors": tuple(cohort.ids)})
    with pytest.raises(UnmaskRequestRefused, match="both kinds of key share of node\\(s\\) hospital-03"):
        node.unmask(greedy)
    # Asking in two separate requests is refused too: the node remembers what it revealed, even after a restart.
    node.unmask(first)
    restarted = SecAggNode.from_bytes(node.to_bytes())
    with pytest.raises(UnmaskRequestRefused, match="already revealed the other kind of share of node\\(s\\) hospital-"):
        restarted.unmask(first.model_copy(update={"survivors": tuple(cohort.ids), "dropped": ()}))
    assert restarted.unmask(first) == node.unmask(first)  # an identical retry is answered identically


def test_a_roster_whose_threshold_is_not_a_strict_majority_is_refused() -> None:
    cohort = Cohort(6)
    roster = cohort.advertise()
    weak = roster.model_copy(update={"threshold": 3})
    with pytest.raises(ProtocolViolation, match="not a strict majority"):
        cohort.nodes["hospital-00"].share_keys(weak, cohort.public)


def test_a_substituted_public_key_is_detected_by_server_and_nodes() -> None:
    cohort = Cohort(4)
    impostor = SecAggNode.begin(ROUND, "hospital-01", Ed25519PrivateKey.generate())  # not the enrolled key
    with pytest.raises(KeySubstitutionDetected, match="hospital-01 are not signed by its enrolled key"):
        cohort.server.receive_advertisement(impostor.advertisement)
    genuine = cohort.nodes["hospital-01"].advertisement
    swapped = genuine.model_copy(update={"mask_public": impostor.advertisement.mask_public})
    with pytest.raises(KeySubstitutionDetected):
        cohort.server.receive_advertisement(swapped)
    with pytest.raises(KeySubstitutionDetected, match="another round"):
        cohort.server.receive_advertisement(
            SecAggNode.begin("other-round", "hospital-01", cohort.identities["hospital-01"]).advertisement
        )
    # A coordinator that forges the roster it hands to nodes is caught by every node.
    roster = cohort.advertise()
    forged = roster.model_copy(update={"advertisements": tuple(
        swapped if item.node_id == "hospital-01" else item for item in roster.advertisements
    )})
    with pytest.raises(KeySubstitutionDetected):
        cohort.nodes["hospital-00"].share_keys(forged, cohort.public)


def test_a_tampered_or_misrouted_share_does_not_open() -> None:
    cohort = Cohort(4)
    cohort.share(cohort.advertise())
    delivery = cohort.server.delivery_for("hospital-00")
    first = delivery.shares[0]
    flipped = bytes([first.ciphertext[-1] ^ 1])
    tampered = EncryptedShare(sender=first.sender, receiver=first.receiver, ciphertext=first.ciphertext[:-1] + flipped)
    bad = delivery.model_copy(update={"shares": (tampered, *delivery.shares[1:])})
    node = cohort.nodes["hospital-00"]
    with pytest.raises(ShareDecryptionFailed, match=first.sender):
        node.masked_input(bad, cohort.updates["hospital-00"], cohort.counts["hospital-00"])
    # hospital-01's share for hospital-02, relabelled as if meant for hospital-00:
    other = next(s for s in cohort.server.delivery_for("hospital-02").shares if s.sender == "hospital-01")
    relabelled = EncryptedShare(sender="hospital-01", receiver="hospital-00", ciphertext=other.ciphertext)
    shares = tuple(relabelled if s.sender == "hospital-01" else s for s in delivery.shares)
    with pytest.raises(ShareDecryptionFailed):
        node.masked_input(ShareDelivery(round_id=ROUND, receiver="hospital-00", senders=delivery.senders,
                                        shares=shares), cohort.updates["hospital-00"], cohort.counts["hospital-00"])


def test_what_the_coordinator_holds_for_one_node_is_statistically_unrelated_to_its_update() -> None:
    length = 50_000
    cohort = Cohort(3, length=length)
    cohort.share(cohort.advertise())
    node = "hospital-00"
    masked = cohort.nodes[node].masked_input(cohort.server.delivery_for(node), cohort.updates[node],
                                             cohort.counts[node])
    words = masked.words[:-1].astype(np.float64) / 2.0**32
    # uniform on [0, 1): mean 1/2, variance 1/12, and no linear relation to the update
    assert abs(words.mean() - 0.5) < 0.01 and abs(words.var() - 1 / 12) < 0.005
    assert abs(np.corrcoef(words, cohort.updates[node])[0, 1]) < 0.03
    decoded = masked.words[:-1].view(np.int32) / (2.0**cohort.spec.fraction_bits * cohort.counts[node])
    assert np.median(np.abs(decoded - cohort.updates[node])) > 1000 * cohort.spec.error_bound
    assert int(masked.words[-1]) != cohort.counts[node]  # even the example count is masked


def test_node_resumes_after_restart_and_never_masks_a_second_update() -> None:
    cohort = Cohort(3)
    roster = cohort.advertise()
    saved = {node: cohort.nodes[node].to_bytes() for node in cohort.ids}
    cohort.nodes = {node: SecAggNode.from_bytes(data) for node, data in saved.items()}
    cohort.share(roster)
    node = SecAggNode.from_bytes(cohort.nodes["hospital-00"].to_bytes())
    delivery = cohort.server.delivery_for("hospital-00")
    first = node.masked_input(delivery, cohort.updates["hospital-00"], cohort.counts["hospital-00"])
    again = SecAggNode.from_bytes(node.to_bytes()).masked_input(delivery, cohort.updates["hospital-00"],
                                                                 cohort.counts["hospital-00"])
    assert np.array_equal(first.words, again.words)
    with pytest.raises(ProtocolViolation, match="already masked a different update"):
        node.masked_input(delivery, cohort.updates["hospital-00"] * 0.5, cohort.counts["hospital-00"])
    assert cohort.server.receive_masked_input(first) is True
    assert cohort.server.receive_masked_input(again) is False  # identical retry, not counted twice
    different = MaskedInput(ROUND, "hospital-00", first.words + np.uint32(1))
    with pytest.raises(ProtocolViolation, match="already sent a different masked input"):
        cohort.server.receive_masked_input(different)


def test_messages_out_of_phase_are_refused() -> None:
    cohort = Cohort(3)
    with pytest.raises(ProtocolViolation, match="advertise_keys, not masked_input"):
        cohort.server.receive_masked_input(MaskedInput(ROUND, "hospital-00", np.zeros(17, np.uint32)))
    with pytest.raises(ProtocolViolation, match="phase advertised"):
        cohort.nodes["hospital-00"].unmask(UnmaskRequest(round_id=ROUND, survivors=tuple(cohort.ids), dropped=()))


@settings(max_examples=15, deadline=None)
@given(n=st.integers(3, 8), data=st.data())
def test_a_coordinator_telling_nodes_different_stories_cannot_rebuild_both_secrets_of_a_node(
    n: int, data: st.DataObject
) -> None:
    """With a strict-majority threshold, splitting the honest nodes between "B survived" and "B dropped" never yields
    t shares of B's self-mask seed and t shares of B's mask key at once."""
    cohort = Cohort(n, length=4)
    cohort.share(cohort.advertise())
    cohort.mask(cohort.ids)
    target, t = cohort.ids[-1], cohort.server.threshold
    others = cohort.ids[:-1]
    told_dropped = set(data.draw(st.lists(st.sampled_from(others), unique=True)))
    self_shares, key_shares = {}, {}
    for node in cohort.ids:
        survivors = tuple(x for x in cohort.ids if x != target or node not in told_dropped)
        request = UnmaskRequest(round_id=ROUND, survivors=survivors,
                                dropped=tuple(x for x in cohort.ids if x not in survivors))
        try:
            response = cohort.nodes[node].unmask(request)
        except (UnmaskRequestRefused, ConsistencyCheckFailed):
            continue
        position = cohort.server.roster.position(node)
        if target in response.self_mask_shares:
            self_shares[position] = shamir.share_from_bytes(response.self_mask_shares[target])
        if target in response.mask_key_shares:
            key_shares[position] = shamir.share_from_bytes(response.mask_key_shares[target])
    assert len(self_shares) < t or len(key_shares) < t
