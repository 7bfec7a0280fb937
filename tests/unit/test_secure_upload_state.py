"""The node's secure-aggregation state on disk: sealed, bound to its round, and the pinned identity keys of peers."""

from __future__ import annotations

import os

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from pneumodesk.client.errors import KeyStoreError
from pneumodesk.client.secure_upload import PeerKeys, SecureStateStore
from pneumodesk.federation.secagg import KeySubstitutionDetected, SecAggNode


def test_round_state_is_sealed_bound_to_its_round_and_survives_a_reload(tmp_path):
    store = SecureStateStore(tmp_path)
    node = SecAggNode.begin("fed/plan/1", "node-a", Ed25519PrivateKey.generate())
    store.save("fed/plan/1", node, ["advertise_keys"])
    (path,) = (tmp_path / "federation" / "secagg").iterdir()
    data = path.read_bytes()
    assert node.state.mask_private not in data and node.state.self_seed not in data  # no secret in clear
    assert b"node-a" not in data
    if os.name == "posix":
        assert path.stat().st_mode & 0o077 == 0 and store.key_path.stat().st_mode & 0o077 == 0
    loaded, sent = store.load("fed/plan/1")
    assert loaded.state == node.state and sent == ["advertise_keys"]
    assert store.load("fed/plan/2") is None
    path.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    with pytest.raises(KeyStoreError, match="cannot be read"):
        store.load("fed/plan/1")
    store.drop("fed/plan/1")
    assert store.load("fed/plan/1") is None


def test_peer_identity_keys_are_pinned_on_first_sight(tmp_path):
    peers = PeerKeys(tmp_path)
    own, other = os.urandom(32), os.urandom(32)
    assert not peers.path.exists() and set(peers.check("me", own, {"me": own, "b": other})) == {"me", "b"}
    assert not peers.path.exists()  # checking pins nothing: only an accepted roster is pinned
    peers.pin(peers.check("me", own, {"me": own, "b": other}))
    assert set(peers.check("me", own, {"me": own, "b": other, "c": os.urandom(32)})) == {"c"}  # a new node
    with pytest.raises(KeySubstitutionDetected, match="node\\(s\\) b changed"):
        peers.check("me", own, {"me": own, "b": os.urandom(32)})
    with pytest.raises(KeySubstitutionDetected, match="this very node"):
        peers.check("me", own, {"me": os.urandom(32), "b": other})
