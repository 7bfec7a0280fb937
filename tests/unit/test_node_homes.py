"""One node per workstation: where the node home and the user home are, and how a machine-wide node keeps its key."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import pytest

from pneumodesk.client.errors import KeyStoreError
from pneumodesk.client.home_key_store import HomeKeyStore
from pneumodesk.client.keys import NodeKey
from pneumodesk.node import homes
from pneumodesk.node.homes import (
    HOME_ENV,
    MACHINE_HOME_ENV,
    default_machine_home,
    is_machine_home,
    machine_home,
    resolve_homes,
)
from pneumodesk.node.store import STORE_FILE, NodeStore
from tests.unit.memory_keyring import MemoryKeyring


@pytest.fixture(autouse=True)
def plain_environment(monkeypatch, tmp_path):
    """No chosen home, a user data folder under tmp_path, and the process umask restored afterwards."""
    monkeypatch.delenv(HOME_ENV, raising=False)
    monkeypatch.delenv(MACHINE_HOME_ENV, raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "user-data"))
    monkeypatch.setattr(sys, "executable", str(tmp_path / "venv" / "bin" / "python"))
    umask = os.umask(0o022)
    yield
    os.umask(umask)


def test_a_development_checkout_keeps_everything_in_the_user_folder(tmp_path) -> None:
    found = resolve_homes()

    assert found.node == found.user == tmp_path / "user-data" / "PneumoDesk"
    assert not found.machine_wide and not is_machine_home(found.node)


@pytest.mark.parametrize("chosen_by", ["argument", "environment"])
def test_a_chosen_home_holds_both_even_in_an_installed_app(chosen_by, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv(MACHINE_HOME_ENV, str(tmp_path / "machine"))
    if chosen_by == "environment":
        monkeypatch.setenv(HOME_ENV, str(tmp_path / "chosen"))

    found = resolve_homes(tmp_path / "chosen" if chosen_by == "argument" else None)

    assert found.node == found.user == tmp_path / "chosen"


def test_an_installed_app_keeps_the_node_per_machine_and_preferences_per_user(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv(MACHINE_HOME_ENV, str(tmp_path / "machine"))

    found = resolve_homes()
    (found.node / "made-by-the-app").write_text("x")

    assert found.node == tmp_path / "machine" and found.user == tmp_path / "user-data" / "PneumoDesk"
    assert found.machine_wide and is_machine_home(found.node)
    assert stat.S_IMODE((found.node / "made-by-the-app").stat().st_mode) == 0o660  # the group shares, others don't


def test_a_machine_wide_store_is_writable_by_the_group_for_every_user(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv(MACHINE_HOME_ENV, str(tmp_path / "machine"))

    store = NodeStore.in_home()
    try:
        files = [store.path.with_name(store.path.name + suffix) for suffix in ("", "-wal", "-shm")]
        modes = {file.name: stat.S_IMODE(file.stat().st_mode) for file in files if file.exists()}
    finally:
        store.engine.dispose()

    # SQLite alone makes 0640 under the umask 007: the next OS user of the workstation could not write a sign-in.
    assert modes == {"node.sqlite3": 0o660, "node.sqlite3-wal": 0o660, "node.sqlite3-shm": 0o660}


def test_a_machine_wide_store_made_owner_writable_by_an_older_version_is_opened_to_the_group(monkeypatch,
                                                                                               tmp_path) -> None:
    monkeypatch.setenv(MACHINE_HOME_ENV, str(tmp_path / "machine"))
    NodeStore.in_home().engine.dispose()
    store_file = tmp_path / "machine" / STORE_FILE
    store_file.chmod(0o640)

    NodeStore.in_home().engine.dispose()

    assert stat.S_IMODE(store_file.stat().st_mode) == 0o660


def test_a_store_in_a_users_own_home_is_not_shared(tmp_path) -> None:
    store = NodeStore(tmp_path / "own" / STORE_FILE)
    store.engine.dispose()

    assert not stat.S_IMODE(store.path.stat().st_mode) & 0o022  # nobody else may write to one user's own node


def test_the_installer_names_the_machine_home_in_install_json(tmp_path) -> None:
    (tmp_path / "venv" / "bin").mkdir(parents=True)
    (tmp_path / "venv" / "bin" / "install.json").write_text(json.dumps({"machine_home": str(tmp_path / "shared")}))

    assert machine_home() == tmp_path / "shared"


def test_a_frozen_app_without_configuration_uses_the_operating_systems_machine_folder(monkeypatch) -> None:
    monkeypatch.setattr(sys, "frozen", True, raising=False)

    assert machine_home() == default_machine_home()


def test_the_machine_folders_per_operating_system(monkeypatch) -> None:
    monkeypatch.setenv("PROGRAMDATA", r"D:\ProgramData")

    assert default_machine_home("linux") == Path("/var/lib/pneumodesk")
    assert default_machine_home("darwin") == Path("/Library/Application Support/PneumoDesk")
    assert default_machine_home("win32") == Path(r"D:\ProgramData") / homes.APP_NAME


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
def test_a_machine_wide_node_keeps_its_key_in_a_group_shared_file_not_a_users_keyring(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv(MACHINE_HOME_ENV, str(tmp_path / "machine"))
    node_home = resolve_homes().node
    keyring = MemoryKeyring()
    key = NodeKey.generate()

    store = HomeKeyStore(node_home, keyring_backend=keyring)
    store.save(key)

    assert store.storage() == "encrypted_file" and not keyring.secrets
    assert stat.S_IMODE(store.secret_path.stat().st_mode) == 0o660
    assert stat.S_IMODE(store.encrypted_path.stat().st_mode) == 0o660
    assert stat.S_IMODE(store.secret_path.parent.stat().st_mode) == 0o2770
    # Opened afresh, as the next staff account would:
    assert HomeKeyStore(node_home).load().public_key_b64 == key.public_key_b64
    assert "shared by every user of this workstation" in store.status_text()


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
def test_a_machine_wide_key_readable_by_everyone_is_refused(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv(MACHINE_HOME_ENV, str(tmp_path / "machine"))
    store = HomeKeyStore(resolve_homes().node)
    store.save(NodeKey.generate())
    store.secret_path.chmod(0o664)

    with pytest.raises(KeyStoreError, match="readable by its owner and group only"):
        HomeKeyStore(store.home).load()
