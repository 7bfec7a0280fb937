"""The node's Ed25519 identity key: in the OS keyring when there is one, else in an encrypted file.

Storage, decided when the key is created and remembered in ``home/federation/node-key.json`` (public data only):
- ``keyring``: the raw private key, base64, under service ``PneumoDesk node key`` and a user name derived from the
  node home's path, so several nodes on one machine (the demo) never share a key.
- ``encrypted_file`` (no usable keyring backend, e.g. a headless Linux server; ``keyring.backends.fail.Keyring``):
  ``home/federation/node-key.enc`` holds the key sealed with AES-256-GCM; the AES key is derived with scrypt
  (n=2^15, r=8, p=1, random salt) from a 32-byte random secret in ``home/secrets/node-key.secret`` (folder 0700,
  file 0600, owner only; refused if others can read it). This protects against the key leaking through a copy of
  the federation folder, a log or a support bundle that leaves ``secrets/`` out; it does not protect against
  someone who can read every file of this user account, which only an OS keyring or hardware key can.
Invariants: the private key is never logged, printed or written in clear; files are created 0600 before any byte.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from .errors import KeyStoreError

KEYRING_SERVICE = "PneumoDesk node key"
_AAD = b"pneumodesk-node-key-v1"
_SCRYPT = {"n": 2**15, "r": 8, "p": 1}
Storage = Literal["keyring", "encrypted_file"]


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def write_private(path: Path, data: bytes) -> None:
    """Write a file readable by its owner only (0600 from creation, atomically replaced)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    with contextlib.suppress(FileNotFoundError):
        temporary.unlink()
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


@dataclass(frozen=True)
class NodeKey:
    """The node's signing identity. ``repr`` shows only the public key."""

    _private: Ed25519PrivateKey

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


class NodeKeyStore:
    """Creates, finds and loads the node key of the node home ``home``."""

    def __init__(self, home: Path, *, keyring_backend: object | None = None) -> None:
        self.home = Path(home)
        self.federation_dir = self.home / "federation"
        self.meta_path = self.federation_dir / "node-key.json"
        self.encrypted_path = self.federation_dir / "node-key.enc"
        self.secret_path = self.home / "secrets" / "node-key.secret"
        self._backend = keyring_backend
        self.keyring_user = "node-" + hashlib.sha256(str(self.home.resolve()).encode()).hexdigest()[:24]

    # -- where --------------------------------------------------------------------------------------------------

    def _keyring(self):  # type: ignore[no-untyped-def]
        if self._backend is not None:
            return self._backend
        import keyring

        return keyring.get_keyring()

    def keyring_usable(self) -> bool:
        if self._backend is not None:
            return True
        return keyring_backend_status()[0]

    def storage(self) -> Storage | None:
        """Where the existing key lives, or None when the node has no key yet."""
        if not self.meta_path.exists():
            return None
        try:
            return json.loads(self.meta_path.read_text(encoding="utf-8"))["storage"]
        except (OSError, ValueError, KeyError):
            raise KeyStoreError(f"{self.meta_path} is damaged; the node key cannot be found.") from None

    def status_text(self) -> str:
        """A sentence for the GUI and ``node status`` about where the key is (or will be) kept."""
        where = self.storage()
        if where == "keyring":
            return "The node key is kept in the OS keyring."
        if where == "encrypted_file":
            note = json.loads(self.meta_path.read_text(encoding="utf-8")).get("note") or (
                "this computer has no OS keyring")
            return f"The node key is kept in an encrypted file in the node folder because {note}."
        return keyring_backend_status()[1] if self._backend is None else "The node key will be kept in the keyring."

    # -- life cycle ---------------------------------------------------------------------------------------------

    def load(self) -> NodeKey:
        where = self.storage()
        if where is None:
            raise KeyStoreError("This node has no key yet; enrol it with a coordinator first.")
        raw = self._load_keyring() if where == "keyring" else self._load_file()
        key = NodeKey(Ed25519PrivateKey.from_private_bytes(raw))
        expected = json.loads(self.meta_path.read_text(encoding="utf-8")).get("public_key")
        if expected and expected != key.public_key_b64:
            raise KeyStoreError("The stored node key does not match its recorded public key; it was replaced.")
        return key

    def create(self, *, replace: bool = False) -> NodeKey:
        """A new key, stored in the keyring when usable, else in the encrypted file. Refuses to overwrite."""
        if self.storage() is not None and not replace:
            raise KeyStoreError("This node already has a key; leave the federation before creating a new one.")
        private = Ed25519PrivateKey.generate()
        raw = private.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                    serialization.NoEncryption())
        key = NodeKey(private)
        where: Storage = "encrypted_file"
        note = ""
        if self.keyring_usable():
            try:
                self._keyring().set_password(KEYRING_SERVICE, self.keyring_user, b64url(raw))
                where = "keyring"
            except Exception as error:  # a locked or broken keyring: fall back, and say so in the status
                note = f"the OS keyring refused to store it ({type(error).__name__})"
        if where == "encrypted_file":
            self._store_file(raw)
        meta = {"storage": where, "public_key": key.public_key_b64, "note": note}
        write_private(self.meta_path, json.dumps(meta).encode())
        return key

    def load_or_create(self) -> NodeKey:
        return self.load() if self.storage() is not None else self.create()

    def delete(self) -> None:
        """Forget the key (leaving the federation). Missing pieces are fine."""
        if self.storage() == "keyring":
            with contextlib.suppress(Exception):  # already gone
                self._keyring().delete_password(KEYRING_SERVICE, self.keyring_user)
        for path in (self.encrypted_path, self.secret_path, self.meta_path):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    # -- keyring ------------------------------------------------------------------------------------------------

    def _load_keyring(self) -> bytes:
        try:
            text = self._keyring().get_password(KEYRING_SERVICE, self.keyring_user)
        except Exception as error:
            raise KeyStoreError(f"The OS keyring could not be read ({type(error).__name__}); unlock it and "
                                "try again.") from None
        if not text:
            raise KeyStoreError("The node key is missing from the OS keyring; the node must enrol again.")
        return _unb64(text)

    # -- encrypted file -----------------------------------------------------------------------------------------

    def _secret(self, create: bool) -> bytes:
        if create and not self.secret_path.exists():
            self.secret_path.parent.mkdir(parents=True, exist_ok=True)
            os.chmod(self.secret_path.parent, 0o700)
            write_private(self.secret_path, secrets.token_bytes(32))
        try:
            mode = self.secret_path.stat().st_mode
            if os.name == "posix" and mode & (stat.S_IRWXG | stat.S_IRWXO):
                raise KeyStoreError(f"{self.secret_path} can be read by other users; make it readable by its "
                                    "owner only (chmod 600) and try again.")
            secret = self.secret_path.read_bytes()
        except FileNotFoundError:
            raise KeyStoreError("The secret that unlocks the node key file is missing; the node must enrol "
                                "again.") from None
        if len(secret) != 32:
            raise KeyStoreError(f"{self.secret_path} is damaged; the node must enrol again.")
        return secret

    def _store_file(self, raw: bytes) -> None:
        salt, nonce = secrets.token_bytes(16), secrets.token_bytes(12)
        key = Scrypt(salt=salt, length=32, **_SCRYPT).derive(self._secret(create=True))
        sealed = AESGCM(key).encrypt(nonce, raw, _AAD)
        document = {"version": 1, "cipher": "AES-256-GCM", "kdf": "scrypt", **_SCRYPT, "salt": b64url(salt),
                    "nonce": b64url(nonce), "ciphertext": b64url(sealed)}
        write_private(self.encrypted_path, json.dumps(document).encode())

    def _load_file(self) -> bytes:
        try:
            document = json.loads(self.encrypted_path.read_text(encoding="utf-8"))
            salt, nonce, sealed = (_unb64(document[k]) for k in ("salt", "nonce", "ciphertext"))
            params = {k: int(document[k]) for k in ("n", "r", "p")}
        except FileNotFoundError:
            raise KeyStoreError("The node key file is missing; the node must enrol again.") from None
        except (OSError, ValueError, KeyError, TypeError):
            raise KeyStoreError(f"{self.encrypted_path} is damaged; the node must enrol again.") from None
        key = Scrypt(salt=salt, length=32, **params).derive(self._secret(create=False))
        try:
            return AESGCM(key).decrypt(nonce, sealed, _AAD)
        except InvalidTag:
            raise KeyStoreError("The node key file cannot be decrypted with this node's secret; it was changed "
                                "or belongs to another node.") from None
