"""The node store under hostile conditions, on real SQLite files: damaged, foreign, newer, locked, read-only and
full stores raise a typed ``NodeStoreError`` with a plain message, a refused file is left byte for byte as it was,
and every verdict, audit entry and ledger entry reported saved is still there after reopening."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import event
from sqlalchemy.pool import ConnectionPoolEntry

from pneumodesk.cli import main
from pneumodesk.gui.verdicts import VerdictStore
from pneumodesk.node import (
    NodeService,
    NodeStore,
    NodeStoreBusy,
    NodeStoreDamaged,
    NodeStoreError,
    NodeStoreFull,
    NodeStoreNotRecognised,
    NodeStoreReadOnly,
    NodeStoreTooNew,
)
from pneumodesk.node.store import STORE_FILE
from tests.builders import write_labelled_folder
from tests.node_builders import CLINICIAN, OWNER, seed_node, sign_in

CORPUS = Path(__file__).parents[1] / "corpus" / "node_store"
SHORT_WAIT_S = 0.3
PLAN = "d" * 64


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A node with accounts, a dataset, a ledger entry and audit entries, closed cleanly."""
    home = tmp_path / "home"
    seed_node(home)
    node = NodeService.open(home)
    owner = node.accounts.authenticate(OWNER[0], OWNER[2])
    root = write_labelled_folder(tmp_path / "data", per_class=2, rng=np.random.default_rng(5))
    dataset_id = node.datasets.register(owner, "ward", root).id
    node.ledger.record(dataset_id, PLAN, 1, epsilon=0.5, delta=1e-5, noise_multiplier=1.1, sample_rate=0.1, steps=3)
    node.close()
    return home


def saved_state(home: Path) -> tuple[list[int], list[tuple[int, float]], bool]:
    """Reopen the store and read back audit ids, ledger (round, ε) pairs and whether the chain is intact."""
    node = NodeService.open(home)
    try:
        audit_ids = sorted(record.id for record in node.audit.read())
        ledger = [(entry.round_number, entry.epsilon) for entry in node.ledger.entries(1)]
        return audit_ids, ledger, node.verify_audit().intact
    finally:
        node.close()


def open_with_short_wait(home: Path) -> NodeService:
    return NodeService(NodeStore(home / STORE_FILE, busy_timeout_s=SHORT_WAIT_S))


# --- damaged, foreign or newer files at start: refused, named, untouched ---------------------------------------

def assert_refused_untouched(path: Path, expected: type[NodeStoreError], *phrases: str) -> NodeStoreError:
    before = digest(path)
    with pytest.raises(expected) as refused:
        NodeStore(path)
    message = str(refused.value)
    assert str(path) in message and "PneumoDesk has not changed it" in message
    for phrase in phrases:
        assert phrase in message
    assert "Traceback" not in message and "sqlalchemy" not in message.lower()
    assert digest(path) == before
    return refused.value


def test_random_bytes_are_refused_as_damaged_and_left_untouched(tmp_path):
    path = tmp_path / STORE_FILE
    path.write_bytes(np.random.default_rng(7).bytes(8192))

    assert_refused_untouched(path, NodeStoreDamaged, "is damaged", "not an SQLite database", "restore it from a backup")


def test_a_truncated_store_is_refused_as_damaged_and_left_untouched(home):
    path = home / STORE_FILE
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])

    assert_refused_untouched(path, NodeStoreDamaged, "is damaged", "malformed", "restore it from a backup")


def test_another_programs_database_is_not_recognised_and_left_untouched(tmp_path):
    path = tmp_path / STORE_FILE
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE patients (id INTEGER PRIMARY KEY, name TEXT)")
        db.execute("INSERT INTO patients (name) VALUES ('not ours')")
    db.close()

    assert_refused_untouched(path, NodeStoreNotRecognised, "is not a PneumoDesk node store", "patients")
    with sqlite3.connect(path) as db:
        tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    db.close()
    assert tables == ["patients"]


def test_a_store_written_by_a_newer_pneumodesk_is_refused_and_left_untouched(home):
    path = home / STORE_FILE
    with sqlite3.connect(path) as db:
        db.execute("UPDATE alembic_version SET version_num = 'r20991231_0099'")
    db.close()

    error = assert_refused_untouched(path, NodeStoreTooNew, "written by a newer PneumoDesk", "r20991231_0099",
                                     "install the newer version")
    assert isinstance(error, NodeStoreTooNew) and error.revision == "r20991231_0099"


def test_a_store_at_this_revision_missing_a_table_is_refused_as_damaged(home):
    path = home / STORE_FILE
    with sqlite3.connect(path) as db:
        db.execute("DROP TABLE egress_log")
    db.close()

    assert_refused_untouched(path, NodeStoreDamaged, "table egress_log is missing")


@pytest.mark.parametrize("sample", sorted(CORPUS.glob("*.sqlite3")), ids=lambda path: path.stem)
def test_the_crash_corpus_is_refused_with_the_named_error_and_left_untouched(tmp_path, sample):
    path = tmp_path / STORE_FILE
    shutil.copyfile(sample, path)
    expected = {cls.__name__: cls for cls in (NodeStoreDamaged, NodeStoreNotRecognised, NodeStoreTooNew)}

    assert_refused_untouched(path, expected[sample.stem.split("__")[0]])


def test_the_cli_prints_the_plain_message_and_exits_1_on_a_damaged_store(tmp_path, capsys):
    (tmp_path / STORE_FILE).write_bytes(b"definitely not a database" * 100)

    status = main(["--home", str(tmp_path), "audit", "verify"])

    err = capsys.readouterr().err
    assert status == 1
    assert err.startswith("pneumodesk: The node store at ") and "is damaged" in err and "Traceback" not in err


# --- locked -------------------------------------------------------------------------------------------------------

@contextmanager
def held_write_lock(path: Path) -> Iterator[None]:
    """Another process in the middle of a long write transaction on the store."""
    script = ("import sqlite3, sys\n"
              "db = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
              "db.execute('BEGIN IMMEDIATE'); db.execute('UPDATE roles SET position = position')\n"
              "print('locked', flush=True); sys.stdin.readline(); db.execute('ROLLBACK')\n")
    holder = subprocess.Popen([sys.executable, "-c", script, str(path)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdin is not None
    try:
        assert holder.stdout.readline().strip() == "locked"
        yield
    finally:
        holder.stdin.write("\n")
        holder.stdin.flush()
        holder.wait(timeout=30)


def test_a_store_locked_at_start_is_waited_for_then_refused_plainly(home):
    path = home / STORE_FILE
    with held_write_lock(path):
        started = time.monotonic()
        with pytest.raises(NodeStoreBusy) as refused:
            NodeStore(path, busy_timeout_s=SHORT_WAIT_S)
        waited = time.monotonic() - started

    assert SHORT_WAIT_S <= waited < 10
    assert "is locked by another program" in str(refused.value) and "try again" in str(refused.value)
    NodeStore(path).close()  # opens once the other program is done


def test_writes_while_another_process_holds_the_lock_fail_plainly_and_lose_nothing(home, tmp_path):
    audit_before, ledger_before, _ = saved_state(home)
    node = open_with_short_wait(home)
    clinician = node.accounts.authenticate(CLINICIAN[0], CLINICIAN[2])
    verdicts = VerdictStore(tmp_path / "verdicts.json")
    node.clinical.record_verdict(clinician, "agree", "v1", lambda: verdicts.set("a" * 64, "agree"))
    saved_audit = saved_state(home)[0]

    with held_write_lock(home / STORE_FILE):
        with pytest.raises(NodeStoreBusy):
            node.audit.append("carl.reader", "test_entry")
        with pytest.raises(NodeStoreBusy):
            node.ledger.record(1, PLAN, 2, epsilon=0.5, delta=1e-5, noise_multiplier=1.1, sample_rate=0.1, steps=3)
        with pytest.raises(NodeStoreBusy, match="nothing from this action was saved"):
            node.clinical.record_verdict(clinician, "disagree", "v1", lambda: verdicts.set("b" * 64, "disagree"))
    node.close()

    audit_after, ledger_after, intact = saved_state(home)
    assert intact and audit_after == saved_audit and len(saved_audit) > len(audit_before)
    assert ledger_after == ledger_before == [(1, 0.5)]
    assert VerdictStore(tmp_path / "verdicts.json").get("a" * 64) == "agree"
    assert VerdictStore(tmp_path / "verdicts.json").get("b" * 64) is None


# --- read-only ----------------------------------------------------------------------------------------------------

@contextmanager
def read_only(target: Path) -> Iterator[None]:
    """Make ``target`` (a file or folder) truly unwritable: by mode for a normal user, by the immutable attribute
    for root (whom modes do not stop); skip where neither works here."""
    if os.geteuid() != 0:
        mode = target.stat().st_mode
        target.chmod(0o555 if target.is_dir() else 0o444)
        try:
            yield
        finally:
            target.chmod(mode)
        return
    chattr = shutil.which("chattr")
    if chattr is None or subprocess.run([chattr, "+i", str(target)], capture_output=True).returncode != 0:
        pytest.skip("cannot make a file read-only for root here (no chattr +i)")
    try:
        yield
    finally:
        subprocess.run([chattr, "-i", str(target)], check=True)


@pytest.mark.parametrize("what", ["file", "folder"])
def test_a_read_only_store_is_refused_at_start_and_keeps_its_data(home, what):
    audit_before, ledger_before, _ = saved_state(home)
    path = home / STORE_FILE
    before = digest(path)

    with read_only(path if what == "file" else home), pytest.raises(NodeStoreReadOnly) as refused:
        NodeService.open(home)

    message = str(refused.value)
    assert f"The node store at {path} is read-only" in message and "write access" in message
    assert digest(path) == before
    assert saved_state(home)[:2] == (audit_before, ledger_before)


# --- full disk mid-write ------------------------------------------------------------------------------------------

def cap_size(node: NodeService, spare_pages: int) -> None:
    """Limit the database to the pages it has now plus ``spare_pages`` (SQLite's max_page_count): a write that needs
    a page beyond that fails with SQLite's own "database or disk is full", exactly as on a full disk."""
    def _cap(dbapi_connection: sqlite3.Connection, _record: ConnectionPoolEntry) -> None:
        pages = dbapi_connection.execute("PRAGMA page_count").fetchone()[0]
        dbapi_connection.execute(f"PRAGMA max_page_count = {pages + spare_pages}")

    event.listen(node.store.engine, "connect", _cap)
    node.store.engine.dispose()


def write_until_full(write: Callable[[int], object], first: int = 0, limit: int = 2000) -> list[int]:
    """Call ``write(first)``, ``write(first + 1)``, … until it raises ``NodeStoreFull``; the numbers reported saved."""
    saved: list[int] = []
    for i in range(first, first + limit):
        try:
            write(i)
        except NodeStoreFull as error:
            assert "is full" in str(error) and "everything saved before is intact" in str(error)
            return saved
        saved.append(i)
    raise AssertionError(f"the store never filled up in {limit} writes")


def test_a_full_disk_mid_write_rolls_back_and_loses_nothing_reported_saved(home, tmp_path):
    node = NodeService.open(home)
    clinician = node.accounts.authenticate(CLINICIAN[0], CLINICIAN[2])
    verdicts = VerdictStore(tmp_path / "verdicts.json")

    def audit(i: int) -> None:
        node.audit.append("carl.reader", "filler", details={"i": i, "pad": "x" * 300})

    def ledger(i: int) -> None:
        node.ledger.record(1, PLAN, i, epsilon=0.01, delta=1e-5, noise_multiplier=1.1, sample_rate=0.1, steps=3)

    def verdict(i: int) -> None:
        node.clinical.record_verdict(clinician, "agree", "v1", lambda: verdicts.set(f"{i:064x}", "agree"))

    writers = (audit, ledger, verdict)
    cap_size(node, spare_pages=3)
    mixed = write_until_full(lambda i: writers[i % 3](i), first=10)  # all three kinds, until the disk fills
    # then each kind on its own, until it too is refused (a small write may still fit where a larger one did not)
    saved = {writer: [i for i in mixed if writers[i % 3] is writer] for writer in writers}
    for k, writer in enumerate(writers):
        saved[writer] += write_until_full(writer, first=10_000 * (k + 1))
    node.close()

    audit_ids, ledger_rows, intact = saved_state(home)
    reopened = NodeService.open(home)
    fillers = [r.details["i"] for r in reopened.audit.read(action="filler")]
    spent = [r.details["round"] for r in reopened.audit.read(action="privacy_spent")]
    verdict_entries = reopened.audit.read(action="verdict")
    reopened.close()
    assert len(mixed) >= 3  # the cap left room for some writes of each kind before the disk filled
    assert intact and audit_ids == list(range(1, len(audit_ids) + 1))
    assert sorted(fillers) == saved[audit]
    assert ledger_rows == [(1, 0.5)] + [(i, 0.01) for i in saved[ledger]]
    assert sorted(spent) == [1, *saved[ledger]]  # each ledger entry committed together with its audit entry
    assert len(verdict_entries) == len(saved[verdict])
    kept = json.loads((tmp_path / "verdicts.json").read_text(encoding="utf-8"))["verdicts"]
    assert sorted(int(key, 16) for key in kept) == saved[verdict]  # a refused verdict was not kept


def test_the_store_is_written_with_wal_and_full_sync(home):
    store = NodeStore(home / STORE_FILE)
    with store.engine.connect() as connection:
        journal = connection.exec_driver_sql("PRAGMA journal_mode").scalar()
        synchronous = connection.exec_driver_sql("PRAGMA synchronous").scalar()
    store.close()

    assert (journal, synchronous) == ("wal", 2)  # 2 = FULL: the WAL is synced at every commit


def test_a_write_after_a_refusal_succeeds_once_the_fault_is_gone(home):
    with held_write_lock(home / STORE_FILE):
        node = None
        with pytest.raises(NodeStoreBusy):
            node = open_with_short_wait(home)
    assert node is None
    node = open_with_short_wait(home)
    entry = node.audit.append(sign_in(home, OWNER[0], OWNER[2]).username, "after_the_lock")
    node.close()

    assert entry in saved_state(home)[0]
