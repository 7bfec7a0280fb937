"""The two places a node key can live: the OS keyring (``KeyringKeyStore``) and an AES-GCM sealed file
(``EncryptedFileKeyStore``, for machines without a keyring). Both implement ``keys.NodeKeyStore``.

Encrypted file: the private key is sealed with AES-256-GCM; the AES key is derived with scrypt (n=2^15, r=8, p=1,
random salt) from a 32-byte random secret in a separate file (folder 0700, file 0600, owner only; refused if others
can read it). This protects against the key leaking through a copy of the federation folder, a log or a support
bundle that leaves the secrets folder out; it does not protect against someone who can read every file of this
user account, which only an OS keyring or hardware key can.
"""

from __future__ import annotations

import contextlib
import json
import secrets
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from .errors import KeyStoreError
from .keys import NodeKey, b64url, from_b64url
from .private_files import make_private_folder, require_owner_only, write_private

if TYPE_CHECKING:
    from keyring.backend import KeyringBackend

KEYRING_SERVICE = "PneumoDesk node key"
_AAD = b"pneumodesk-node-key-v1"
_SCRYPT = {"n": 2**15, "r": 8, "p": 1}


def keyring_backend_status() -> tuple[bool, str]:
    """(usable, plain sentence) about the OS keyring on this machine, for ``node status`` and the GUI."""
    try:
        import keyring
        from keyring.backends import fail
    except ImportError:
        return False, "No OS keyring support is installed."
    backend = keyring.get_keyring()
    if isinstance(backend, fail.Keyring) or getattr(backend, "priority", 1) <= 0:
        return False, ("This computer has no OS keyring (secret service) available, so the node key is kept in an "
                       "encrypted file in the node folder instead.")
    return True, f"The node key is kept in the OS keyring ({type(backend).__name__})."


class KeyringKeyStore:
    """The raw private key, base64url, in the OS keyring under ``KEYRING_SERVICE`` and ``user``.

    ``backend``: a keyring backend object; None means the system's (``keyring.get_keyring()``, asked at each use).
    """

    def __init__(self, user: str, backend: KeyringBackend | None = None) -> None:
        self.user = user
        self._backend = backend

    def backend(self) -> KeyringBackend:
        if self._backend is not None:
            return self._backend
        import keyring

        return keyring.get_keyring()

    def _read(self) -> str | None:
        try:
            text = self.backend().get_password(KEYRING_SERVICE, self.user)
        except Exception as error:  # keyring backends raise their own types (locked, D-Bus gone, ...)
            raise KeyStoreError(f"The OS keyring could not be read ({type(error).__name__}); unlock it and "
                                "try again.") from None
        return None if text is None else str(text)

    def has_key(self) -> bool:
        return bool(self._read())

    def load(self) -> NodeKey:
        text = self._read()
        if not text:
            raise KeyStoreError("The node key is missing from the OS keyring; the node must enrol again.")
        try:
            return NodeKey.from_private_raw(from_b64url(text))
        except ValueError:
            raise KeyStoreError("The node key in the OS keyring is damaged; the node must enrol again.") from None

    def save(self, key: NodeKey) -> None:
        """Raises ``KeyStoreError`` (the keyring's own error as its ``__cause__``) when the keyring refuses."""
        try:
            self.backend().set_password(KEYRING_SERVICE, self.user, b64url(key.private_raw()))
        except Exception as error:  # a locked or broken keyring
            raise KeyStoreError(f"The OS keyring refused to store the node key ({type(error).__name__}).") from error

    def delete(self) -> None:
        with contextlib.suppress(Exception):  # already gone, or no keyring at all: nothing to forget
            self.backend().delete_password(KEYRING_SERVICE, self.user)

    def status_text(self) -> str:
        return f"The node key is kept in the OS keyring ({type(self.backend()).__name__})."


class EncryptedFileKeyStore:
    """The private key sealed in ``key_path`` under a secret in ``secret_path`` (see the module docstring).

    ``group``: a machine-wide node's key, which every member of the node folder's group (the workstation's staff
    accounts) must unlock: the files are 0660 in a 2770 folder, and a file others can read is still refused.
    """

    def __init__(self, key_path: Path, secret_path: Path, *, group: bool = False) -> None:
        self.key_path = Path(key_path)
        self.secret_path = Path(secret_path)
        self.group = group

    def has_key(self) -> bool:
        return self.key_path.exists()

    def load(self) -> NodeKey:
        try:
            document = json.loads(self.key_path.read_text(encoding="utf-8"))
            salt, nonce, sealed = (from_b64url(document[k]) for k in ("salt", "nonce", "ciphertext"))
            params = {k: int(document[k]) for k in ("n", "r", "p")}
        except FileNotFoundError:
            raise KeyStoreError("The node key file is missing; the node must enrol again.") from None
        except (OSError, ValueError, KeyError, TypeError):
            raise KeyStoreError(f"{self.key_path} is damaged; the node must enrol again.") from None
        try:
            aes_key = Scrypt(salt=salt, length=32, **params).derive(self._secret(create=False))
            return NodeKey.from_private_raw(AESGCM(aes_key).decrypt(nonce, sealed, _AAD))
        except (InvalidTag, ValueError):
            raise KeyStoreError("The node key file cannot be decrypted with this node's secret; it was changed "
                                "or belongs to another node.") from None

    def save(self, key: NodeKey) -> None:
        salt, nonce = secrets.token_bytes(16), secrets.token_bytes(12)
        aes_key = Scrypt(salt=salt, length=32, **_SCRYPT).derive(self._secret(create=True))
        sealed = AESGCM(aes_key).encrypt(nonce, key.private_raw(), _AAD)
        document = {"version": 1, "cipher": "AES-256-GCM", "kdf": "scrypt", **_SCRYPT, "salt": b64url(salt),
                    "nonce": b64url(nonce), "ciphertext": b64url(sealed)}
        write_private(self.key_path, json.dumps(document).encode(), group=self.group)

    def delete(self) -> None:
        for path in (self.key_path, self.secret_path):
            path.unlink(missing_ok=True)

    def status_text(self) -> str:
        return "The node key is kept in an encrypted file in the node folder."

    def _secret(self, create: bool) -> bytes:
        if create and not self.secret_path.exists():
            make_private_folder(self.secret_path.parent, group=self.group)
            write_private(self.secret_path, secrets.token_bytes(32), group=self.group)
        try:
            require_owner_only(self.secret_path, group=self.group)
            secret = self.secret_path.read_bytes()
        except FileNotFoundError:
            raise KeyStoreError("The secret that unlocks the node key file is missing; the node must enrol "
                                "again.") from None
        if len(secret) != 32:
            raise KeyStoreError(f"{self.secret_path} is damaged; the node must enrol again.")
        return secret
