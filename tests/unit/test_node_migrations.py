"""The node store's migrations: a fresh store gets every table; upgrading a store at head changes nothing;
``alembic upgrade head`` on an empty file (by URL, as a person would run it) builds the same schema."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from alembic import command
from alembic.script import ScriptDirectory

from pneumodesk.node import NodeService
from pneumodesk.node.models import Base
from pneumodesk.node.store import NodeStore, alembic_config

FIRST = {"roles", "role_permissions", "users", "audit_entries", "audit_head", "alembic_version"}
SECOND = {"datasets", "dataset_files", "node_policy", "approvals", "privacy_ledger", "federation_membership",
          "egress_log", "local_models"}
THIRD = {"dataset_images"}
FOURTH = {"recognised_peers"}
PACS = {"pacs_connections"}
READINGS = {"clinical_readings"}
TABLES = FIRST | SECOND | THIRD | FOURTH | PACS | READINGS
APPEND_ONLY_TRIGGERS = {f"{table}_no_{verb}" for table in ("audit_entries", "privacy_ledger", "egress_log",
                                                           "dataset_images") for verb in ("update", "delete")}


def schema(path: Path) -> set[tuple[str, str]]:
    with sqlite3.connect(path) as db:
        return set(db.execute("select type, name from sqlite_master where name not like 'sqlite_%'"))


def revision(path: Path) -> str:
    with sqlite3.connect(path) as db:
        return db.execute("select version_num from alembic_version").fetchone()[0]


def test_a_fresh_store_has_every_table_the_models_declare_and_the_default_roles(tmp_path):
    store = NodeStore(tmp_path / "node.sqlite3")
    store.close()

    tables = {name for kind, name in schema(tmp_path / "node.sqlite3") if kind == "table"}
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()

    assert tables == TABLES and set(Base.metadata.tables) == TABLES - {"alembic_version"}
    assert revision(tmp_path / "node.sqlite3") == head
    with sqlite3.connect(tmp_path / "node.sqlite3") as db:
        roles = [r[0] for r in db.execute("select name from roles order by position")]
    assert roles == ["Clinician", "Researcher", "Compliance officer", "Administrator", "Owner"]


def test_opening_a_store_at_head_again_is_a_no_op_and_keeps_its_data(tmp_path):
    node = NodeService.open(tmp_path)
    node.accounts.create_owner("olivia.owner", "Olivia Owner", "sunflower meadow 88")
    node.close()
    before = (schema(tmp_path / "node.sqlite3"), revision(tmp_path / "node.sqlite3"))

    again = NodeService.open(tmp_path)

    assert (schema(tmp_path / "node.sqlite3"), revision(tmp_path / "node.sqlite3")) == before
    assert again.accounts.has_owner() and again.verify_audit().intact
    again.close()


def test_alembic_upgrade_head_on_an_empty_file_and_downgrade_to_base(tmp_path):
    path = tmp_path / "empty.sqlite3"
    path.touch()
    config = alembic_config(url=f"sqlite:///{path}")

    command.upgrade(config, "head")
    built = schema(path)
    command.downgrade(config, "base")
    emptied = {name for kind, name in schema(path) if kind == "table"}
    command.upgrade(config, "head")

    assert {name for kind, name in built if kind == "table"} == TABLES
    assert {("trigger", name) for name in APPEND_ONLY_TRIGGERS} <= built
    assert emptied == {"alembic_version"}
    assert schema(path) == built
    store = NodeStore(path)  # a store made by hand opens like any other
    store.close()


def test_a_store_at_the_first_revision_upgrades_keeping_its_accounts_and_audit_chain(tmp_path):
    path = tmp_path / "node.sqlite3"
    path.touch()
    config = alembic_config(url=f"sqlite:///{path}")
    command.upgrade(config, "r20261127_0001")
    assert {name for kind, name in schema(path) if kind == "table"} == FIRST

    node = NodeService.open(tmp_path)  # opening upgrades to head
    node.accounts.create_owner("olivia.owner", "Olivia Owner", "sunflower meadow 88")
    node.close()
    command.downgrade(config, "r20261127_0001")
    after_downgrade = {name for kind, name in schema(path) if kind == "table"}
    again = NodeService.open(tmp_path)

    assert after_downgrade == FIRST
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert revision(path) == head and again.accounts.has_owner() and again.verify_audit().intact
    again.close()


def test_a_store_at_the_second_revision_gains_the_recognised_peers_table_and_keeps_its_policy(tmp_path):
    path = tmp_path / "node.sqlite3"
    path.touch()
    command.upgrade(alembic_config(url=f"sqlite:///{path}"), "r20261127_0002")
    with sqlite3.connect(path) as db:  # a policy saved before min_recognised_peers existed
        db.execute("insert into node_policy (id, policy_json, updated, updated_by) values "
                   "(1, '{\"min_nodes_per_round\":4}', '2026-11-27 10:00:00', 'olivia.owner')")

    node = NodeService.open(tmp_path)

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert revision(path) == head and "recognised_peers" in {name for _, name in schema(path)}
    policy = node.policy.get()
    assert policy.min_nodes_per_round == 4 and policy.min_recognised_peers == 0
    assert node.peers.list() == []
    node.close()
