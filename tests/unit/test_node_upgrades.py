"""Installing a newer PneumoDesk over an older one: the old store is copied before it is migrated; a store from a
newer PneumoDesk is refused and left as it was, with no copy taken."""

from __future__ import annotations

import sqlite3

import pytest
from alembic import command

from pneumodesk.node import NodeService
from pneumodesk.node.errors import NodeStoreTooNew
from pneumodesk.node.store import NodeStore, alembic_config, known_revisions
from pneumodesk.node.store_backup import stored_revision

OLDER = "r20261127_0002"


def test_an_older_store_is_backed_up_before_it_is_migrated(tmp_path) -> None:
    path = tmp_path / "node.sqlite3"
    path.touch()
    command.upgrade(alembic_config(url=f"sqlite:///{path}"), OLDER)
    with sqlite3.connect(path) as db:
        db.execute("insert into node_policy (id, policy_json, updated, updated_by) values "
                   "(1, '{\"min_nodes_per_round\":4}', '2026-11-27 10:00:00', 'olivia.owner')")

    node = NodeService.open(tmp_path)
    node.close()

    (backup,) = (tmp_path / "backups").iterdir()
    assert backup.name.startswith(f"node-{OLDER}-") and backup.suffix == ".sqlite3"
    assert stored_revision(backup) == OLDER and stored_revision(path) == known_revisions().head
    with sqlite3.connect(backup) as db:
        assert db.execute("select policy_json from node_policy").fetchone() == ('{"min_nodes_per_round":4}',)


def test_a_new_or_current_store_takes_no_backup(tmp_path) -> None:
    NodeStore(tmp_path / "node.sqlite3").close()
    store = NodeStore(tmp_path / "node.sqlite3")
    store.close()

    assert store.backup is None and not (tmp_path / "backups").exists()


def test_a_store_from_a_newer_pneumodesk_is_refused_untouched_and_not_copied(tmp_path) -> None:
    path = tmp_path / "node.sqlite3"
    NodeStore(path).close()
    with sqlite3.connect(path) as db:
        db.execute("update alembic_version set version_num = 'r20991231_0099'")
    before = path.read_bytes()

    with pytest.raises(NodeStoreTooNew, match="written by a newer PneumoDesk"):
        NodeStore(path)

    assert path.read_bytes() == before and not (tmp_path / "backups").exists()
