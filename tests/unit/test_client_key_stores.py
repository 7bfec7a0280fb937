"""One contract, every node key store: the OS keyring, the encrypted file, and a node home's store that picks one.

Each case supplies a store, a way to damage what it keeps (another secret, a changed entry) and the folder its
files (if any) live in; the tests are the ``NodeKeyStore`` constraints, run against each.
"""

from __future__ import annotations

import base64
import os
import secrets
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import keyring
import pytest
from keyring.backends import fail

from pneumodesk.client import EncryptedFileKeyStore, HomeKeyStore, KeyringKeyStore, KeyStoreError, NodeKey
from pneumodesk.client.key_stores import KEYRING_SERVICE
from pneumodesk.client.keys import NodeKeyStore

from .memory_keyring import MemoryKeyring


@dataclass
class Case:
    store: NodeKeyStore
    damage: Callable[[], None]  # make what the store keeps unreadable with its secret, without deleting it
    folder: Path


def _keyring_case(tmp_path: Path) -> Case:
    backend = MemoryKeyring()
    store = KeyringKeyStore("node-under-test", backend)

    def damage() -> None:
        backend.set_password(KEYRING_SERVICE, "node-under-test", "not a key!")

    return Case(store, damage, tmp_path)


def _file_case(tmp_path: Path) -> Case:
    store = EncryptedFileKeyStore(tmp_path / "federation" / "node-key.enc", tmp_path / "secrets" / "node-key.secret")

    def damage() -> None:  # the wrong secret: as if the file were opened with another node's
        store.secret_path.write_bytes(secrets.token_bytes(32))

    return Case(store, damage, tmp_path)


def _home_case(tmp_path: Path) -> Case:
    store = HomeKeyStore(tmp_path)  # this machine has no OS keyring (set below): the encrypted file

    def damage() -> None:
        store.secret_path.write_bytes(secrets.token_bytes(32))

    return Case(store, damage, tmp_path)


@pytest.fixture(params=[_keyring_case, _file_case, _home_case], ids=["keyring", "encrypted_file", "home"])
def case(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Case:
    monkeypatch.setattr(keyring, "get_keyring", lambda: fail.Keyring())
    make: Callable[[Path], Case] = request.param
    return make(tmp_path)


def _files(folder: Path) -> list[Path]:
    return [path for path in folder.rglob("*") if path.is_file()]


def test_a_saved_key_loads_back_as_the_same_key(case: Case) -> None:
    key = NodeKey.generate()

    case.store.save(key)
    loaded = case.store.load()

    assert case.store.has_key()
    assert loaded.public_key_b64 == key.public_key_b64
    assert loaded.sign(b"message") == key.sign(b"message")  # Ed25519 is deterministic: the same private key
    assert case.store.status_text().startswith("The node key is kept in")


def test_saving_again_replaces_the_key(case: Case) -> None:
    case.store.save(NodeKey.generate())
    second = NodeKey.generate()

    case.store.save(second)

    assert case.store.load().public_key_b64 == second.public_key_b64


def test_a_missing_key_is_reported_not_invented(case: Case) -> None:
    assert not case.store.has_key()
    with pytest.raises(KeyStoreError):
        case.store.load()

    case.store.save(NodeKey.generate())
    case.store.delete()

    assert not case.store.has_key()
    with pytest.raises(KeyStoreError):
        case.store.load()
    case.store.delete()  # twice is fine


def test_a_damaged_key_or_the_wrong_secret_is_refused(case: Case) -> None:
    case.store.save(NodeKey.generate())

    case.damage()

    with pytest.raises(KeyStoreError):
        case.store.load()


def test_the_private_key_is_never_on_disk_in_clear(case: Case) -> None:
    key = NodeKey.generate()
    raw = key.private_raw()

    case.store.save(key)

    forms = (raw, raw.hex().encode(), base64.b64encode(raw).rstrip(b"="), base64.urlsafe_b64encode(raw).rstrip(b"="))
    for path in _files(case.folder):
        content = path.read_bytes()
        assert not any(form in content for form in forms), path
    assert raw.hex() not in repr(key)


def test_every_file_is_readable_by_its_owner_only(case: Case) -> None:
    case.store.save(NodeKey.generate())

    for path in _files(case.folder):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, path
    secrets_folder = case.folder / "secrets"
    if secrets_folder.exists():
        assert stat.S_IMODE(os.stat(secrets_folder).st_mode) == 0o700
