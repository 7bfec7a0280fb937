"""The key store of one node home: the OS keyring when there is one, else the encrypted file — decided when the key
is saved and remembered in ``home/federation/node-key.json`` (public data only: where, the public key, why).

- keyring: user name derived from the node home's path, so several nodes on one machine (the demo) never share a key;
- encrypted file (no usable keyring backend, e.g. a headless Linux server, or a keyring that refused):
  ``home/federation/node-key.enc`` sealed under ``home/secrets/node-key.secret`` (see ``key_stores``).
- machine-wide node home (``pneumodesk.node.homes``, an installed app): always the encrypted file, shared with the
  folder's group (0660 files, 2770 folder): an OS keyring belongs to one user, and the node belongs to the machine.
  The key is then as safe as the group's membership and the machine's disk; a TPM-backed store is the next step.
Invariant: ``load`` checks the key against the recorded public key, so a key swapped underneath is refused.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pneumodesk.node.homes import is_machine_home

from .errors import KeyStoreError
from .key_stores import EncryptedFileKeyStore, KeyringKeyStore, keyring_backend_status
from .keys import NodeKey, NodeKeyStore
from .private_files import write_private

if TYPE_CHECKING:
    from keyring.backend import KeyringBackend

Storage = Literal["keyring", "encrypted_file"]


class HomeKeyStore:
    """A ``NodeKeyStore`` for the node home ``home``; ``keyring_backend`` replaces the system keyring (tests, demo)."""

    def __init__(self, home: Path, *, keyring_backend: KeyringBackend | None = None) -> None:
        self.home = Path(home)
        self.meta_path = self.home / "federation" / "node-key.json"
        self.keyring_user = "node-" + hashlib.sha256(str(self.home.resolve()).encode()).hexdigest()[:24]
        self.keyring = KeyringKeyStore(self.keyring_user, keyring_backend)
        self.machine_wide = is_machine_home(self.home)
        self.file = EncryptedFileKeyStore(self.home / "federation" / "node-key.enc",
                                          self.home / "secrets" / "node-key.secret", group=self.machine_wide)
        self._keyring_given = keyring_backend is not None

    @property
    def encrypted_path(self) -> Path:
        return self.file.key_path

    @property
    def secret_path(self) -> Path:
        return self.file.secret_path

    def keyring_usable(self) -> bool:
        if self.machine_wide:
            return False  # one user's keyring would lock every other staff account out of the node
        return self._keyring_given or keyring_backend_status()[0]

    def _meta(self) -> dict[str, str] | None:
        if not self.meta_path.exists():
            return None
        try:
            meta = json.loads(self.meta_path.read_text(encoding="utf-8"))
            if meta["storage"] not in ("keyring", "encrypted_file"):
                raise ValueError(meta["storage"])
            return {str(k): str(v) for k, v in meta.items()}
        except (OSError, ValueError, KeyError, TypeError):
            raise KeyStoreError(f"{self.meta_path} is damaged; the node key cannot be found.") from None

    def storage(self) -> Storage | None:
        """Where the existing key lives, or None when the node has no key yet."""
        meta = self._meta()
        if meta is None:
            return None
        return "keyring" if meta["storage"] == "keyring" else "encrypted_file"

    def _store(self, where: Storage) -> NodeKeyStore:
        return self.keyring if where == "keyring" else self.file

    def has_key(self) -> bool:
        return self.storage() is not None

    def load(self) -> NodeKey:
        meta = self._meta()
        if meta is None:
            raise KeyStoreError("This node has no key yet; enrol it with a coordinator first.")
        key = self._store("keyring" if meta["storage"] == "keyring" else "encrypted_file").load()
        expected = meta.get("public_key")
        if expected and expected != key.public_key_b64:
            raise KeyStoreError("The stored node key does not match its recorded public key; it was replaced.")
        return key

    def save(self, key: NodeKey) -> None:
        """Into the keyring when usable, else (or when it refuses) the encrypted file; replaces an earlier key."""
        previous = self.storage()
        where: Storage = "encrypted_file"
        note = ""
        if self.keyring_usable():
            try:
                self.keyring.save(key)
                where = "keyring"
            except KeyStoreError as error:  # a locked or broken keyring: fall back, and say so in the status
                cause = error.__cause__
                note = f"the OS keyring refused to store it ({type(cause).__name__ if cause else 'unknown'})"
        if where == "encrypted_file":
            self.file.save(key)
        if previous is not None and previous != where:
            self._store(previous).delete()
        meta = {"storage": where, "public_key": key.public_key_b64, "note": note}
        write_private(self.meta_path, json.dumps(meta).encode(), group=self.machine_wide)

    def delete(self) -> None:
        """Forget the key (leaving the federation). Missing pieces are fine."""
        self.keyring.delete()
        self.file.delete()
        self.meta_path.unlink(missing_ok=True)

    def status_text(self) -> str:
        meta = self._meta()
        if meta is None and self.machine_wide:
            return "The node key will be kept in an encrypted file in the machine-wide node folder."
        if meta is None:
            return keyring_backend_status()[1] if not self._keyring_given else (
                "The node key will be kept in the keyring.")
        if meta["storage"] == "keyring":
            return "The node key is kept in the OS keyring."
        note = meta.get("note") or ("the node is shared by every user of this workstation" if self.machine_wide
                                    else "this computer has no OS keyring")
        return f"The node key is kept in an encrypted file in the node folder because {note}."
