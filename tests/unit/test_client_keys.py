"""A node home's key store: the OS keyring when there is one; on this machine (no backend) an encrypted file, said
plainly. (What every store must do is in test_client_key_stores.py.)"""

from __future__ import annotations

import json
import os
import stat

import keyring
import pytest
from keyring.backends import fail

from pneumodesk.client.errors import KeyStoreError
from pneumodesk.client.home_key_store import HomeKeyStore
from pneumodesk.client.key_stores import KEYRING_SERVICE, keyring_backend_status
from pneumodesk.client.keys import NodeKey

from .memory_keyring import MemoryKeyring


def create(store: HomeKeyStore) -> NodeKey:
    key = NodeKey.generate()
    store.save(key)
    return key


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_without_a_keyring_backend_the_key_goes_to_an_encrypted_file_and_the_status_says_so(tmp_path, monkeypatch):
    monkeypatch.setattr(keyring, "get_keyring", lambda: fail.Keyring())
    store = HomeKeyStore(tmp_path)
    usable, sentence = keyring_backend_status()
    assert not usable and "no OS keyring" in sentence

    key = create(store)

    assert store.storage() == "encrypted_file"
    assert "encrypted file" in store.status_text() and "no OS keyring" in store.status_text()
    raw = key._private.private_bytes_raw()
    for path in (store.encrypted_path, store.secret_path, store.meta_path):
        assert mode(path) == 0o600
        assert raw not in path.read_bytes()
    assert mode(store.secret_path.parent) == 0o700
    assert raw.hex() not in repr(key) and key.public_key_b64 in repr(key)
    again = HomeKeyStore(tmp_path).load()
    assert again.public_key_b64 == key.public_key_b64
    assert again.sign(b"message") == key.sign(b"message")  # Ed25519 is deterministic: the same private key


def test_a_changed_key_file_or_an_exposed_secret_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(keyring, "get_keyring", lambda: fail.Keyring())
    store = HomeKeyStore(tmp_path)
    create(store)
    document = json.loads(store.encrypted_path.read_text())
    sealed = bytearray(document["ciphertext"], "ascii")
    sealed[5] = ord("A") if sealed[5] != ord("A") else ord("B")
    original = store.encrypted_path.read_text()
    store.encrypted_path.write_text(json.dumps({**document, "ciphertext": sealed.decode()}))
    with pytest.raises(KeyStoreError, match="cannot be decrypted"):
        store.load()
    store.encrypted_path.write_text(original)
    os.chmod(store.secret_path, 0o644)
    with pytest.raises(KeyStoreError, match="chmod 600"):
        store.load()
    os.chmod(store.secret_path, 0o600)
    assert store.load()


def test_a_key_swapped_underneath_its_recorded_public_key_is_refused(tmp_path):
    backend = MemoryKeyring()
    store = HomeKeyStore(tmp_path, keyring_backend=backend)
    create(store)

    store.keyring.save(NodeKey.generate())  # another key put in the keyring entry behind the node's back

    with pytest.raises(KeyStoreError, match="does not match its recorded public key"):
        store.load()


def test_with_a_keyring_the_private_key_lives_only_there(tmp_path):
    backend = MemoryKeyring()
    store = HomeKeyStore(tmp_path, keyring_backend=backend)

    key = create(store)

    assert store.storage() == "keyring" and "OS keyring" in store.status_text()
    assert (KEYRING_SERVICE, store.keyring_user) in backend.secrets
    assert not store.encrypted_path.exists() and not store.secret_path.exists()
    assert HomeKeyStore(tmp_path, keyring_backend=backend).load().public_key_b64 == key.public_key_b64
    other_home = HomeKeyStore(tmp_path / "second-node", keyring_backend=backend)
    assert other_home.keyring_user != store.keyring_user  # two nodes on one machine never share a key
    store.delete()
    assert backend.secrets == {} and store.storage() is None
    with pytest.raises(KeyStoreError, match="no key yet"):
        store.load()


def test_a_keyring_that_refuses_falls_back_to_the_encrypted_file_and_says_why(tmp_path):
    class Locked(MemoryKeyring):
        def set_password(self, service: str, username: str, password: str) -> None:
            raise keyring.errors.KeyringLocked("locked")

    store = HomeKeyStore(tmp_path, keyring_backend=Locked())
    key = create(store)
    assert store.storage() == "encrypted_file" and "KeyringLocked" in store.status_text()
    assert store.load().public_key_b64 == key.public_key_b64
