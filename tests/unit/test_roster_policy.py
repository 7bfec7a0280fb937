"""The hospital's roster rules on the node: recognised peers (pinned by an admin, audited), the policy fields that ask
for them, and the check that refuses a roster or an unmasking request with too few recognised peers."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from pneumodesk.client.roster_policy import RosterPolicy, TooFewRecognisedPeers, last_roster
from pneumodesk.federation.plan import TrainingPlan
from pneumodesk.federation.secagg import KeyRoster, QuantisationSpec, SecAggNode
from pneumodesk.federation.secagg.roster_rules import key_fingerprint
from pneumodesk.federation.secagg.wire import SecureRoster
from pneumodesk.node import NodePolicy, NodeService, PermissionDenied
from pneumodesk.node.errors import RecognisedPeerError
from pneumodesk.node.recognised_peers import canonical_fingerprint
from tests.node_builders import CLINICIAN, OWNER, seed_node, sign_in

ROUND = "federation-x/plan-abc/round-1"
ME = "hospital-00"


def roster_of(n: int) -> SecureRoster:
    """A genuine roster of n nodes (``hospital-00`` is this node), threshold a strict majority."""
    ids = [f"hospital-{i:02d}" for i in range(n)]
    identities = {node: Ed25519PrivateKey.generate() for node in ids}
    nodes = [SecAggNode.begin(ROUND, node, identities[node]) for node in ids]
    spec = QuantisationSpec.for_round(max_nodes=n, clip=1.0, max_examples=100)
    roster = KeyRoster(round_id=ROUND, threshold=n // 2 + 1, vector_length=4, quantisation=spec,
                       advertisements=tuple(node.advertisement for node in nodes))
    return SecureRoster(roster=roster, identity_keys={node: key.public_key().public_bytes_raw()
                                                      for node, key in identities.items()})


def recognised(roster: SecureRoster, *nodes: str) -> frozenset[str]:
    return frozenset(canonical_fingerprint(key_fingerprint(roster.identity_keys[node])) for node in nodes)


@pytest.fixture
def node(tmp_path):
    seed_node(tmp_path / "home")
    service = NodeService.open(tmp_path / "home")
    yield service
    service.close()


def test_the_policy_asks_for_recognised_peers_and_old_policies_load_with_it_off():
    policy = NodePolicy().with_settings(min_recognised_peers="2")
    assert policy.min_recognised_peers == 2
    assert NodePolicy.from_json_dict(policy.to_json_dict()) == policy
    old = {key: value for key, value in NodePolicy().to_json_dict().items() if key != "min_recognised_peers"}
    assert NodePolicy.from_json_dict(old).min_recognised_peers == 0


def test_recognising_and_forgetting_a_peer_needs_manage_federation_and_is_audited(tmp_path, node):
    owner = sign_in(tmp_path / "home", OWNER[0], OWNER[2])
    fingerprint = key_fingerprint(bytes(32))
    peer = node.peers.recognise(owner, fingerprint.upper(), "  St Mary's  ", "hospital-07")
    assert (peer.fingerprint, peer.name) == (canonical_fingerprint(fingerprint), "St Mary's")
    assert node.peers.fingerprints() == {canonical_fingerprint(fingerprint)}
    with pytest.raises(RecognisedPeerError, match="not a key fingerprint"):
        node.peers.recognise(owner, "abcd", "Nowhere")
    clinician = sign_in(tmp_path / "home", CLINICIAN[0], CLINICIAN[2])
    with pytest.raises(PermissionDenied):
        node.peers.forget(clinician, fingerprint)
    node.peers.forget(owner, fingerprint)
    assert node.peers.list() == []
    actions = [record.action for record in node.audit.read(user=OWNER[0])]
    assert actions[:2] == ["peer_forgotten", "peer_recognised"]


def test_the_smallest_round_holds_without_a_plan_and_takes_the_plans_when_larger():
    rules = RosterPolicy(min_nodes_per_round=4)
    plan = TrainingPlan(name="p", architecture="tiny_cnn", input_size=64, base_model_sha256="0" * 64,
                        learning_rate=0.01, rounds=1, min_nodes=6)
    assert rules.smallest_round(None) == 4 and rules.smallest_round(plan) == 6


def test_a_roster_with_too_few_recognised_peers_is_refused_and_shown_to_the_admin(tmp_path):
    roster = roster_of(5)  # t = 3
    wanting_two = RosterPolicy(min_recognised_peers=2, recognised=recognised(roster, "hospital-01"))
    with pytest.raises(TooFewRecognisedPeers, match=r"holds 1 hospital\(s\) whose key .* at least 2"):
        wanting_two.check_roster(tmp_path, ME, roster)
    shown = last_roster(tmp_path)
    assert [peer.node_id for peer in shown] == ["hospital-01", "hospital-02", "hospital-03", "hospital-04"]
    assert [peer.recognised for peer in shown] == [True, False, False, False]
    assert shown[1].fingerprint == key_fingerprint(roster.identity_keys["hospital-02"])


def test_unrecognised_peers_as_many_as_the_threshold_are_refused(tmp_path):
    roster = roster_of(7)  # t = 4; six peers: two recognised leave four the coordinator may control
    rules = RosterPolicy(min_recognised_peers=2, recognised=recognised(roster, "hospital-01", "hospital-02"))
    with pytest.raises(TooFewRecognisedPeers, match="4 hospital\\(s\\) in the round are not recognised"):
        rules.check_roster(tmp_path, ME, roster)


def test_enough_recognised_peers_pass_and_the_unmasking_request_must_keep_them(tmp_path):
    roster = roster_of(5)
    rules = RosterPolicy(min_recognised_peers=2, recognised=recognised(roster, "hospital-01", "hospital-02"))
    in_round = rules.check_roster(tmp_path, ME, roster)
    in_round.check_survivors([ME, "hospital-01", "hospital-02"])
    with pytest.raises(TooFewRecognisedPeers, match="keeps 1 recognised hospital\\(s\\)"):
        in_round.check_survivors([ME, "hospital-01", "hospital-03", "hospital-04"])
    RosterPolicy().check_roster(tmp_path, ME, roster).check_survivors([ME])  # off by default


def test_the_rules_are_read_from_the_node_store(tmp_path, node):
    owner = sign_in(tmp_path / "home", OWNER[0], OWNER[2])
    node.policy.set(owner, node.policy.get().with_settings(min_nodes_per_round=5, min_recognised_peers=1))
    node.peers.recognise(owner, key_fingerprint(bytes(32)), "St Mary's")
    rules = RosterPolicy.read(tmp_path / "home")
    assert rules == RosterPolicy(5, 1, frozenset({canonical_fingerprint(key_fingerprint(bytes(32)))}))
    assert RosterPolicy.read(tmp_path / "elsewhere") == RosterPolicy()  # no store: the default policy's minimum

