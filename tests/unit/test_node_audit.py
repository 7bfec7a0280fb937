"""The audit chain: intact logs verify; every kind of tampering done with sqlite3 directly is found and named."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

import pytest

from pneumodesk.cli import main
from pneumodesk.node import NodeService
from pneumodesk.node.audit import GENESIS, canonical_json, entry_hash

PASSWORD = "sunflower meadow 88"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A store with five audit entries (owner created, sign-in, two predictions, an export)."""
    folder = tmp_path / "home"
    node = NodeService.open(folder)
    node.accounts.create_owner("olivia.owner", "Olivia Owner", PASSWORD)
    session = node.accounts.authenticate("olivia.owner", PASSWORD)
    node.clinical.record_predictions(session, 8, 1, "2026.11")
    node.clinical.record_predictions(session, 3, 0, "2026.11")
    node.clinical.export(session, "worklist_csv", 11, lambda: folder / "x.csv")
    node.close()
    return folder


def tamper(home: Path, *statements: str) -> None:
    """Edit the store as an attacker with the file would: drop the append-only triggers, run SQL, commit."""
    with sqlite3.connect(home / "node.sqlite3") as db:
        db.execute("DROP TRIGGER IF EXISTS audit_entries_no_update")
        db.execute("DROP TRIGGER IF EXISTS audit_entries_no_delete")
        for statement in statements:
            db.execute(statement)
    db.close()


def verify(home: Path):
    node = NodeService.open(home)
    try:
        return node.verify_audit()
    finally:
        node.close()


def test_an_untouched_log_verifies_and_the_cli_says_so(home, capsys):
    report = verify(home)

    assert report.intact and report.checked == 5
    assert main(["--home", str(home), "audit", "verify"]) == 0
    assert "intact: 5 entries" in capsys.readouterr().out


def test_the_chain_is_what_the_module_docstring_says(home):
    rows = sqlite3.connect(home / "node.sqlite3").execute(
        "select id, time, username, action, target, outcome, details, prev_hash, entry_hash from audit_entries "
        "order by id").fetchall()
    previous = GENESIS
    for id_, time, user, action, target, outcome, details, prev_hash, digest in rows:
        fields = {"id": id_, "time": time, "user": user, "action": action, "target": target, "outcome": outcome,
                  "details": details}
        expected = hashlib.sha256((previous + "\n" + canonical_json(fields)).encode()).hexdigest()
        assert prev_hash == previous and digest == expected == entry_hash(previous, fields)
        previous = digest
    predictions = [json.loads(r[6]) for r in rows if r[3] == "predict"]
    assert predictions == [{"count": 8, "failed": 1, "model_version": "2026.11"},
                           {"count": 3, "failed": 0, "model_version": "2026.11"}]


def test_sqlite_refuses_updates_and_deletes_while_the_triggers_stand(home):
    db = sqlite3.connect(home / "node.sqlite3")
    for statement in ("update audit_entries set outcome='ok' where id=1", "delete from audit_entries where id=5"):
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            db.execute(statement)
    db.close()
    assert verify(home).intact


@pytest.mark.parametrize(
    ("statements", "first_bad", "words"),
    [
        (["update audit_entries set details='{\"count\":1,\"failed\":0,\"model_version\":\"2026.11\"}' where id=3"],
         3, "changed"),
        (["update audit_entries set username='someone.else' where id=2"], 2, "changed"),
        (["update audit_entries set time='2020-01-01T00:00:00.000000+00:00' where id=4"], 4, "changed"),
        (["delete from audit_entries where id=3"], 3, "missing"),
        (["delete from audit_entries where id=5"], 5, "deleted"),
        (["delete from audit_entries where id>=4"], 4, "deleted"),
        (["update audit_entries set id=100 where id=3", "update audit_entries set id=3 where id=4",
          "update audit_entries set id=4 where id=100"], 3, "does not follow"),
        (["delete from audit_head"], 6, "head"),
        (["insert into audit_entries values (6, '2026-11-27T00:00:00.000000+00:00', 'x', 'login', 'x', 'ok', '{}',"
          " 'f00', 'bad')"], 6, "does not follow"),
    ],
    ids=["edit-details", "edit-user", "edit-time", "delete-middle", "delete-last", "delete-tail", "reorder",
         "delete-head", "insert-forged"],
)
def test_each_kind_of_tampering_is_detected_and_named(home, capsys, statements, first_bad, words):
    tamper(home, *statements)

    report = verify(home)
    status = main(["--home", str(home), "audit", "verify"])

    assert not report.intact and report.first_bad_id == first_bad and words in report.problem
    assert status == 1
    assert f"first bad entry {first_bad}" in capsys.readouterr().err


def test_an_edit_whose_own_hash_was_recomputed_still_breaks_the_next_link(home):
    db = sqlite3.connect(home / "node.sqlite3")
    row = db.execute("select id, time, username, action, target, outcome, details, prev_hash from audit_entries "
                     "where id=3").fetchone()
    db.close()
    forged = {"id": 3, "time": row[1], "user": row[2], "action": row[3], "target": row[4], "outcome": row[5],
              "details": '{"count":0,"failed":0,"model_version":"2026.11"}'}
    tamper(home, f"update audit_entries set details='{forged['details']}', "
                 f"entry_hash='{entry_hash(row[7], forged)}' where id=3")

    report = verify(home)

    assert report.first_bad_id == 4 and "does not follow" in report.problem
