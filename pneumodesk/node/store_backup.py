"""A copy of the node store taken before a newer PneumoDesk migrates it, so an upgrade can always be undone."""

from __future__ import annotations

import sqlite3
import time
from contextlib import closing
from pathlib import Path

from .store_check import REVISION_TABLE, KnownRevisions

BACKUP_FOLDER = "backups"


def stored_revision(path: Path) -> str | None:
    """The schema revision the store at ``path`` is at; None when it is missing, empty or has no revision yet."""
    if not path.exists() or path.stat().st_size == 0:
        return None
    with closing(sqlite3.connect(path)) as db:
        has_table = db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
                               (REVISION_TABLE,)).fetchone()
        if not has_table:
            return None
        row = db.execute(f"SELECT version_num FROM {REVISION_TABLE}").fetchone()
    return None if row is None else str(row[0])


def backup_before_upgrade(path: Path, revisions: KnownRevisions) -> Path | None:
    """Copy a store that is behind ``revisions.head`` to ``backups/node-<revision>-<UTC time>.sqlite3`` beside it.

    Returns the copy, or None when nothing will be migrated (a new, empty or current store). Called after
    ``check_store_file``, so a damaged store or one from a newer PneumoDesk never gets here. The copy goes through
    SQLite's online backup, so it is consistent even with a WAL beside the file; it is written before the first
    migration runs, and an existing copy is never overwritten.
    """
    revision = stored_revision(path)
    if revision is None or revision == revisions.head:
        return None
    folder = path.parent / BACKUP_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    target = folder / f"{path.stem}-{revision}-{stamp}{path.suffix}"
    counter = 1
    while target.exists():
        counter += 1
        target = folder / f"{path.stem}-{revision}-{stamp}-{counter}{path.suffix}"
    with closing(sqlite3.connect(path)) as source, closing(sqlite3.connect(target)) as copy:
        source.backup(copy)
    return target
