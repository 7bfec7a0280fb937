"""Turn a failure of the node store's SQLite file into the typed ``NodeStoreError`` that says what happened.

Only faults of the file itself are translated (damaged, not a database, locked, read-only, full, cannot be opened,
disk I/O); a constraint violation or a programming error is left as it is, because it is a bug, not a fault an
administrator can fix. SQLite rolls back the failed transaction in every translated case, so what an earlier call
reported saved is untouched.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy.exc import DBAPIError

from .errors import (
    NodeStoreBusy,
    NodeStoreDamaged,
    NodeStoreError,
    NodeStoreFull,
    NodeStoreReadOnly,
    NodeStoreUnavailable,
)

# SQLite's primary result codes (https://www.sqlite.org/rescode.html).
SQLITE_PERM, SQLITE_BUSY, SQLITE_LOCKED, SQLITE_READONLY = 3, 5, 6, 8
SQLITE_IOERR, SQLITE_CORRUPT, SQLITE_FULL, SQLITE_CANTOPEN, SQLITE_NOTADB = 10, 11, 13, 14, 26


def sqlite_error_of(error: BaseException) -> sqlite3.Error | None:
    """The sqlite3 error behind ``error`` (SQLAlchemy wraps it as ``DBAPIError.orig``), or None."""
    if isinstance(error, DBAPIError) and isinstance(error.orig, sqlite3.Error):
        return error.orig
    if isinstance(error, sqlite3.Error):
        return error
    return None


def store_fault(error: BaseException, path: Path, busy_timeout_s: float) -> NodeStoreError | None:
    """The typed error for a fault of the store file at ``path``, or None when ``error`` is not one."""
    cause = sqlite_error_of(error)
    if cause is None or isinstance(cause, sqlite3.IntegrityError | sqlite3.ProgrammingError):
        return None
    code = getattr(cause, "sqlite_errorcode", -1) & 0xFF
    detail = str(cause)
    if code in (SQLITE_BUSY, SQLITE_LOCKED):
        return NodeStoreBusy(path, busy_timeout_s)
    if code == SQLITE_FULL:
        return NodeStoreFull(path)
    if code in (SQLITE_READONLY, SQLITE_PERM):
        return NodeStoreReadOnly(path, detail)
    if code in (SQLITE_CORRUPT, SQLITE_NOTADB):
        return NodeStoreDamaged(path, detail)
    if code == SQLITE_CANTOPEN and path.is_file():  # it is there, yet its journal files cannot be made or opened
        return NodeStoreReadOnly(path, f"the file or its folder cannot be written: {detail}")
    if code in (SQLITE_CANTOPEN, SQLITE_IOERR):
        return NodeStoreUnavailable(path, detail)
    return None


@contextmanager
def store_faults(path: Path, busy_timeout_s: float) -> Iterator[None]:
    """Re-raise a store-file fault inside the block as its ``NodeStoreError`` (the original kept as the cause)."""
    try:
        yield
    except (DBAPIError, sqlite3.Error) as error:
        typed = store_fault(error, path, busy_timeout_s)
        if typed is None:
            raise
        raise typed from error
