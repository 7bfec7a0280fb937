"""Credentials: argon2id operator passwords, EdDSA JWTs signed by the coordinator, Ed25519 node challenges.

Invariants: tokens are verified with a fixed algorithm allow-list (``EdDSA`` only, so ``alg: none`` and HMAC
confusion are refused), and must carry exp, iat, iss, aud and sub; node and operator tokens have different
audiences so one can never stand in for the other. Nothing here logs a token, password or key.
"""

from __future__ import annotations

import base64
import datetime as dt
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from .config import write_private
from .errors import InvalidInput, Unauthorised

ALGORITHMS = ["EdDSA"]
ROLES = ("operator", "viewer")

_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash("not a real password")


def hash_password(password: str) -> str:
    if len(password) < 12:
        raise InvalidInput("Operator passwords must have at least 12 characters.")
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """Constant-shape check: an unknown user costs one argon2 verification like a known one."""
    try:
        _hasher.verify(password_hash or _DUMMY_HASH, password)  # raises unless the password matches
    except (VerificationError, InvalidHashError):
        return False
    return password_hash is not None


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def from_b64url(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError):
        raise InvalidInput("The value is not base64url.") from None


def node_public_key(raw: bytes) -> Ed25519PublicKey:
    if len(raw) != 32:
        raise InvalidInput("The node public key must be a raw 32-byte Ed25519 key (base64url).")
    return Ed25519PublicKey.from_public_bytes(raw)


def verify_node_signature(public_key: bytes, message: bytes, signature: bytes) -> bool:
    try:
        node_public_key(public_key).verify(signature, message)
    except (InvalidSignature, InvalidInput, ValueError):
        return False
    return True


@dataclass(frozen=True)
class Claims:
    subject: str
    kind: str  # node | operator
    role: str | None
    node_id: str | None


class TokenAuthority:
    """Issues and verifies the coordinator's JWTs with its Ed25519 key."""

    def __init__(self, key: Ed25519PrivateKey, issuer: str, node_audience: str, operator_audience: str) -> None:
        self._key = key
        self._public = key.public_key()
        self.issuer = issuer
        self.audiences = {"node": node_audience, "operator": operator_audience}

    @staticmethod
    def create_key(path: Path) -> None:
        pem = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        write_private(path, pem)

    @staticmethod
    def load_key(path: Path) -> Ed25519PrivateKey:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"{path} is not an Ed25519 private key")
        return key

    def issue(self, kind: str, subject: str, seconds: int, *, role: str | None = None,
              node_id: str | None = None) -> str:
        now = dt.datetime.now(dt.UTC)
        claims: dict[str, object] = {
            "iss": self.issuer, "aud": self.audiences[kind], "sub": subject, "iat": now, "nbf": now,
            "exp": now + dt.timedelta(seconds=seconds), "jti": secrets.token_urlsafe(12), "kind": kind,
        }
        if role is not None:
            claims["role"] = role
        if node_id is not None:
            claims["node_id"] = node_id
        return jwt.encode(claims, self._key, algorithm="EdDSA")

    def verify(self, token: str, kind: str) -> Claims:
        """Decode and check signature, algorithm, issuer, audience and lifetime; raise ``Unauthorised`` otherwise."""
        return self._claims(self._decode(token, [self.audiences[kind]]), kind)

    def verify_any(self, token: str) -> Claims:
        """``verify`` for a token of either kind, with one signature check instead of one per kind tried: the kind
        is the one the (verified) token claims, and its audience must be that kind's."""
        data = self._decode(token, list(self.audiences.values()))
        kind = data.get("kind")
        if not isinstance(kind, str) or kind not in self.audiences or data.get("aud") != self.audiences[kind]:
            raise Unauthorised("The access token is not valid for this coordinator.")
        return self._claims(data, kind)

    def _decode(self, token: str, audiences: list[str]) -> dict[str, Any]:
        try:
            return jwt.decode(
                token, self._public, algorithms=ALGORITHMS, audience=audiences, issuer=self.issuer,
                options={"require": ["exp", "iat", "iss", "aud", "sub"]}, leeway=5,
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorised("The access token has expired; request a new one.") from None
        except jwt.InvalidTokenError:
            raise Unauthorised("The access token is not valid for this coordinator.") from None

    @staticmethod
    def _claims(data: dict[str, Any], kind: str) -> Claims:
        if data.get("kind") != kind:
            raise Unauthorised("The access token is not valid for this coordinator.")
        if kind == "node" and not isinstance(data.get("node_id"), str):
            raise Unauthorised("The access token is not valid for this coordinator.")
        if kind == "operator" and data.get("role") not in ROLES:
            raise Unauthorised("The access token is not valid for this coordinator.")
        return Claims(subject=data["sub"], kind=kind, role=data.get("role"), node_id=data.get("node_id"))
