"""TokenAuthority.verify_any: one signature check for endpoints both nodes and operators read, same refusals."""

from __future__ import annotations

import datetime as dt

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from pneumodesk.coordinator.auth import TokenAuthority
from pneumodesk.coordinator.errors import Unauthorised

KEY = Ed25519PrivateKey.generate()
AUTHORITY = TokenAuthority(KEY, "coordinator", "nodes", "operators")


def _forged(**claims: object) -> str:
    """A token signed with the coordinator's own key but with the given claims (what ``issue`` never writes)."""
    now = dt.datetime.now(dt.UTC)
    body = {"iss": "coordinator", "sub": "x", "iat": now, "nbf": now, "exp": now + dt.timedelta(minutes=5), **claims}
    return jwt.encode(body, KEY, algorithm="EdDSA")


def test_each_kind_is_recognised_from_its_verified_token():
    node = AUTHORITY.verify_any(AUTHORITY.issue("node", "node:n1", 60, node_id="n1"))
    operator = AUTHORITY.verify_any(AUTHORITY.issue("operator", "operator:ada", 60, role="viewer"))
    assert (node.kind, node.node_id) == ("node", "n1")
    assert (operator.kind, operator.role) == ("operator", "viewer")


@pytest.mark.parametrize("token", [
    TokenAuthority(Ed25519PrivateKey.generate(), "coordinator", "nodes", "operators").issue("node", "n", 60,
                                                                                            node_id="n"),
    _forged(aud="nodes", kind="operator", role="operator"),  # a node audience cannot carry an operator token
    _forged(aud="operators", kind="node", node_id="n"),  # nor the other way round
    _forged(aud="nodes", kind="admin"),
    _forged(aud="nodes"),
    _forged(aud=["nodes", "operators"], kind="node", node_id="n"),
    _forged(aud="nodes", kind="node"),  # a node token without its node id
    _forged(aud="operators", kind="operator", role="root"),
    _forged(aud="elsewhere", kind="node", node_id="n"),
    "not a token",
])
def test_what_verify_refuses_verify_any_refuses_too(token):
    with pytest.raises(Unauthorised):
        AUTHORITY.verify_any(token)


def test_an_expired_token_says_so():
    expired = _forged(aud="nodes", kind="node", node_id="n", exp=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1))
    with pytest.raises(Unauthorised, match="expired"):
        AUTHORITY.verify_any(expired)
