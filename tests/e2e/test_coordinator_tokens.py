"""End to end: the coordinator refuses forged, expired, wrong-audience, ``alg: none``, confused and revoked tokens."""

from __future__ import annotations

import base64
import datetime as dt
import json

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from pneumodesk.coordinator.config import CoordinatorConfig, CoordinatorPaths

from .coordinator_harness import approved_nodes, coordinator_cli


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _claims(config: CoordinatorConfig, node_id: str, **changes) -> dict:
    now = dt.datetime.now(dt.UTC)
    claims = {"iss": config.issuer, "aud": config.node_audience, "sub": f"node:{node_id}", "iat": now, "nbf": now,
              "exp": now + dt.timedelta(minutes=5), "kind": "node", "node_id": node_id}
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


@pytest.fixture
def setting(shared_coordinator_on_both):
    coordinator = shared_coordinator_on_both
    node = approved_nodes(coordinator, 1)[0]
    paths = CoordinatorPaths(coordinator.directory)
    key = serialization.load_pem_private_key(paths.token_key.read_bytes(), password=None)
    return coordinator, node, CoordinatorConfig.load(paths), key


def _status(node, token: str) -> tuple[int, dict]:
    response = node.http.get(f"{node.coordinator.url}/plans", headers={"Authorization": f"Bearer {token}"}, timeout=30)
    return response.status_code, response.json()


def test_a_token_signed_by_the_server_key_is_accepted(setting):
    _coordinator, node, config, key = setting
    assert _status(node, jwt.encode(_claims(config, node.node_id), key, algorithm="EdDSA"))[0] == 200


@pytest.mark.parametrize(
    "case",
    ["forged", "expired", "wrong-audience", "wrong-issuer", "alg-none", "hs256-with-public-key", "operator-audience",
     "missing-exp", "garbage"],
)
def test_bad_tokens_are_refused_with_a_json_error(setting, case):
    _coordinator, node, config, key = setting
    past = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    if case == "forged":
        token = jwt.encode(_claims(config, node.node_id), Ed25519PrivateKey.generate(), algorithm="EdDSA")
    elif case == "expired":
        token = jwt.encode(_claims(config, node.node_id, iat=past, nbf=past,
                                   exp=past + dt.timedelta(minutes=1)), key, algorithm="EdDSA")
    elif case == "wrong-audience":
        token = jwt.encode(_claims(config, node.node_id, aud="pneumodesk-node:another-federation"), key,
                           algorithm="EdDSA")
    elif case == "wrong-issuer":
        token = jwt.encode(_claims(config, node.node_id, iss="someone-else"), key, algorithm="EdDSA")
    elif case == "alg-none":
        claims = _claims(config, node.node_id)
        claims = {k: int(v.timestamp()) if isinstance(v, dt.datetime) else v for k, v in claims.items()}
        token = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}."
    elif case == "hs256-with-public-key":
        public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)
        claims = _claims(config, node.node_id)
        claims = {k: int(v.timestamp()) if isinstance(v, dt.datetime) else v for k, v in claims.items()}
        header = _b64({"alg": "HS256", "typ": "JWT"})
        import hashlib
        import hmac

        signing_input = f"{header}.{_b64(claims)}"
        signature = base64.urlsafe_b64encode(
            hmac.new(public, signing_input.encode(), hashlib.sha256).digest()).rstrip(b"=").decode()
        token = f"{signing_input}.{signature}"
    elif case == "operator-audience":
        token = jwt.encode(_claims(config, node.node_id, aud=config.operator_audience), key, algorithm="EdDSA")
    elif case == "missing-exp":
        token = jwt.encode(_claims(config, node.node_id, exp=None), key, algorithm="EdDSA")
    else:
        token = "not.a.token"
    status, body = _status(node, token)
    assert status == 401
    assert body["error"] == "unauthorised" and "token" in body["message"]


def test_a_node_token_is_not_an_operator_token_and_no_token_is_refused(setting):
    coordinator, node, _config, _key = setting
    http = coordinator.session()
    confused = http.get(f"{coordinator.url}/nodes", headers=node.headers(), timeout=30)
    assert confused.status_code == 401 and confused.json()["error"] == "unauthorised"
    missing = http.get(f"{coordinator.url}/plans", timeout=30)
    assert missing.status_code == 401 and "access token" in missing.json()["message"]


def test_a_valid_token_of_a_revoked_node_is_refused(setting):
    coordinator, node, config, key = setting
    fresh = jwt.encode(_claims(config, node.node_id), key, algorithm="EdDSA")
    coordinator_cli("nodes", "revoke", coordinator.directory, node.node_id)
    for token in (node.token, fresh):
        status, body = _status(node, token)
        assert status == 403 and body["error"] == "node_revoked" and "revoked" in body["message"]
