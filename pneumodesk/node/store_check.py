"""Check an existing node store file before PneumoDesk opens it for writing, so that a damaged file, another
program's database or one from a newer PneumoDesk is refused with a plain ``NodeStoreError`` — never "repaired",
migrated or otherwise written to.

The checks only read, on a plain sqlite3 connection, before the store's own connection switches the file to WAL:
the SQLite header, ``PRAGMA quick_check`` (every page and index readable; linear in the file's size, a few
milliseconds for a typical store), whose tables the file holds, its Alembic revision, that a file claiming a
revision holds some table besides the revision's, and — when it claims this build's newest revision — that every
table and column of ``models`` is there. A missing or empty file is a new store.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from .errors import NodeStoreDamaged, NodeStoreNotRecognised, NodeStoreTooNew
from .models import Base
from .store_faults import store_faults

SQLITE_HEADER = b"SQLite format 3\x00"
REVISION_TABLE = "alembic_version"


@dataclass(frozen=True)
class KnownRevisions:
    """The Alembic revisions this build ships, and its newest one."""

    all: frozenset[str]
    head: str


def check_store_file(path: Path, busy_timeout_s: float, revisions: KnownRevisions) -> None:
    """Raise the ``NodeStoreError`` that says why the existing file at ``path`` must not be opened; return quietly
    when it is missing, empty, or a healthy node store at a revision this build knows."""
    if not path.exists() or path.stat().st_size == 0:
        return
    with path.open("rb") as handle:
        header = handle.read(len(SQLITE_HEADER))
    if header != SQLITE_HEADER:
        raise NodeStoreDamaged(path, "it is not an SQLite database: its first bytes are not the SQLite header")
    with store_faults(path, busy_timeout_s), closing(sqlite3.connect(path, timeout=busy_timeout_s)) as db:
        problems = [str(row[0]) for row in db.execute("PRAGMA quick_check(5)")]
        if problems != ["ok"]:
            raise NodeStoreDamaged(path, "its integrity check failed: " + "; ".join(problems))
        tables = {str(row[0]) for row in db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'")}
        if not tables:
            return
        if REVISION_TABLE not in tables:
            shown = ", ".join(sorted(tables)[:5]) + (", …" if len(tables) > 5 else "")
            detail = f"it holds another program's tables: {shown}; no PneumoDesk schema revision"
            raise NodeStoreNotRecognised(path, detail)
        found = [str(row[0]) for row in db.execute(f"SELECT version_num FROM {REVISION_TABLE}")]
        unknown = [revision for revision in found if revision not in revisions.all]
        if unknown:
            raise NodeStoreTooNew(path, unknown[0], revisions.head)
        if found and tables == {REVISION_TABLE}:  # every revision creates tables: none at all is damage
            raise NodeStoreDamaged(path, f"its schema revision is {found[0]} but it holds none of its tables")
        if found == [revisions.head]:
            missing = missing_schema(db)
            if missing:
                raise NodeStoreDamaged(path, f"its schema revision is {revisions.head} but {missing}")


def missing_schema(db: sqlite3.Connection) -> str:
    """What of the tables and columns ``models`` declares the database lacks, in words ('' when nothing)."""
    for table in Base.metadata.sorted_tables:
        columns = {str(row[1]) for row in db.execute(f"PRAGMA table_info('{table.name}')")}
        if not columns:
            return f"table {table.name} is missing"
        lacking = sorted(column.name for column in table.columns if column.name not in columns)
        if lacking:
            return f"table {table.name} lacks column(s) {', '.join(lacking)}"
    return ""
