"""The node's Ed25519 identity key, and ``NodeKeyStore``: the interface every place that keeps it implements.

The stores themselves live in ``key_stores`` (the OS keyring; an encrypted file) and ``home_key_store`` (the one a
node home uses: the keyring when there is one, else the encrypted file). A store is built once where the program
starts (the GUI's Federation page, the ``node`` command) and handed down; nothing below it picks a store itself.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from typing import Protocol

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def from_b64url(text: str) -> bytes:
    """The inverse of ``b64url``; raises ``ValueError`` (``binascii.Error``) for text that is not base64url."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class NodeKey:
    """The node's signing identity. ``repr`` shows only the public key."""

    _private: Ed25519PrivateKey

    @classmethod
    def generate(cls) -> NodeKey:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_private_raw(cls, raw: bytes) -> NodeKey:
        """The key from its 32 raw private bytes; ``ValueError`` when they are not an Ed25519 private key."""
        return cls(Ed25519PrivateKey.from_private_bytes(raw))

    def private_raw(self) -> bytes:
        """The 32 raw private bytes, for a ``NodeKeyStore`` to seal; nothing else may ask for them."""
        return self._private.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                           serialization.NoEncryption())

    @property
    def signing_key(self) -> Ed25519PrivateKey:
        """The key object, for protocol code that signs with the node identity (secure aggregation's key
        advertisement); it must not be serialised or kept beyond the call."""
        return self._private

    @property
    def public_raw(self) -> bytes:
        return self._private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)

    @property
    def public_key_b64(self) -> str:
        """Raw public key, base64url without padding: what enrolment sends."""
        return b64url(self.public_raw)

    @property
    def public_key_sha256(self) -> str:
        return hashlib.sha256(self.public_raw).hexdigest()

    def sign(self, message: bytes) -> bytes:
        return self._private.sign(message)

    def __repr__(self) -> str:
        return f"NodeKey(public={self.public_key_b64})"


class NodeKeyStore(Protocol):
    """Keeps one node's private key between runs.

    Constraints (``tests/unit/test_client_key_stores.py`` runs one suite against every implementation):
    - ``load`` MUST raise ``KeyStoreError`` — never return another key — when the key is missing, cannot be read
      or decrypted, or was changed;
    - ``save`` replaces any key stored before; ``has_key`` is True after it, False after ``delete``;
    - ``delete`` MUST succeed when some or all of the pieces are already gone;
    - the private key MUST NOT be written in clear anywhere (a file, a log, an error message), and every file a
      store writes MUST be readable by its owner only (0600, secrets' folders 0700).
    """

    def has_key(self) -> bool: ...

    def load(self) -> NodeKey: ...

    def save(self, key: NodeKey) -> None: ...

    def delete(self) -> None: ...

    def status_text(self) -> str:
        """A sentence for the GUI and ``node status`` about where the key is (or will be) kept."""
        ...
