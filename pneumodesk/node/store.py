"""The node store: one SQLite file per node in the app home, opened with SQLAlchemy 2 and brought to the newest
schema by the Alembic revisions shipped in ``migrations/``.

Invariants: every transaction starts with ``BEGIN IMMEDIATE`` so concurrent writers (the GUI and a CLI run) are
serialised and the audit chain cannot fork; foreign keys are enforced; the schema only ever changes by migration.

Durability: the journal is WAL with ``synchronous=FULL``. WAL lets a reader run beside the one writer and keeps
the main file consistent if the app dies mid-write; FULL syncs the WAL to disk at every commit, so a verdict's
audit entry, an audit entry or a ledger entry is on disk before the call that wrote it returns — with NORMAL the
last commits could vanish in a power cut after the app had reported them saved. The cost is one fsync per commit
(a few milliseconds), which a desktop node's few writes a minute afford easily.

Faults of the file (see ``store_check`` and ``store_faults``): an existing file that is damaged, not ours or from
a newer PneumoDesk is refused before anything writes to it; a lock held longer than ``busy_timeout_s``, a
read-only file or folder, a full disk or a disk error raise a ``NodeStoreError`` subclass with a plain message,
and the failed transaction is rolled back, so everything reported saved before stays saved. There is no read-only
mode: every sign-in and action writes the audit log, so a store that cannot be written is refused.

Upgrades: a store at an older revision is copied to ``backups/`` beside it (``store_backup``) before the first
migration runs; one from a newer PneumoDesk is refused untouched (``NodeStoreTooNew``).
"""

from __future__ import annotations

import functools
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry

from .errors import NodeStoreDamaged, NodeStoreReadOnly, NodeStoreUnavailable
from .homes import is_machine_home, resolve_homes
from .store_backup import backup_before_upgrade
from .store_check import KnownRevisions, check_store_file
from .store_faults import sqlite_error_of, store_fault, store_faults

STORE_FILE = "node.sqlite3"
MIGRATIONS = Path(__file__).with_name("migrations")
#: How long a transaction waits for another process's write lock before giving up with ``NodeStoreBusy``.
BUSY_TIMEOUT_S = 30.0


def resolve_home(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The node home: ``explicit``, else ``$PNEUMODESK_HOME``, else the machine-wide folder of an installed app, else
    the user data folder (``homes.resolve_homes``). Created if missing."""
    return resolve_homes(explicit).node


def make_engine(path: Path, busy_timeout_s: float = BUSY_TIMEOUT_S) -> Engine:
    """An engine on the SQLite file at ``path`` with the pragmas and transaction mode the store relies on."""
    engine = create_engine(f"sqlite:///{path}", connect_args={"timeout": busy_timeout_s})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: sqlite3.Connection, _record: ConnectionPoolEntry) -> None:
        dbapi_connection.isolation_level = None  # let the "begin" hook below issue BEGIN itself
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_s * 1000)}")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def alembic_config(connection: Connection | None = None, url: str | None = None) -> Config:
    """An Alembic config for the node migrations, with no alembic.ini needed (they ship inside the package)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        config.attributes["connection"] = connection
    if url is not None:
        config.set_main_option("sqlalchemy.url", url)
    return config


@functools.cache
def known_revisions() -> KnownRevisions:
    """The revisions shipped in ``migrations/`` (read once per process)."""
    script = ScriptDirectory.from_config(alembic_config())
    head = script.get_current_head()
    assert head is not None, "the node migrations have no head revision"
    return KnownRevisions(frozenset(revision.revision for revision in script.walk_revisions()), head)


# Alembic keeps its running environment in module globals (``alembic.context``), so two stores opened at once in one
# process (several hospitals of a local federation, a worker thread beside the GUI) must not migrate concurrently.
_MIGRATING = threading.Lock()


def upgrade(engine: Engine) -> None:
    """Bring the store to the newest revision (a no-op when it is already there)."""
    with _MIGRATING, engine.begin() as connection:
        command.upgrade(alembic_config(connection), "head")


def share_with_group(path: Path) -> None:
    """In a machine-wide home, make the store file (and its WAL and shared-memory files) readable and writable by
    the node's group before SQLite opens it.

    SQLite creates a new database with mode 0644 less the umask — 0640 under the machine home's umask 007 — and
    gives its WAL and shared-memory files the database's mode, so without this the first OS user to open the store
    would be the only one who could write to it. Files another user owns are left alone (only their owner may
    change their mode); the installer's setgid folder gives them the group. On Windows the installer's ACLs do this."""
    if os.name != "posix" or not is_machine_home(path.parent):
        return
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o660)
    except FileExistsError:
        pass
    else:
        os.close(descriptor)
    for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        try:
            status = file.stat()
        except FileNotFoundError:
            continue
        if status.st_uid == os.getuid() and status.st_mode & 0o060 != 0o060:
            file.chmod(0o660)


def probe_writable(engine: Engine) -> None:
    """Commit one write that changes nothing (``user_version`` set to itself), so that a read-only file or folder is
    found when the store opens rather than at the first action someone expects to be saved."""
    with engine.begin() as connection:
        version = int(connection.exec_driver_sql("PRAGMA user_version").scalar() or 0)
        connection.exec_driver_sql(f"PRAGMA user_version = {version}")


class NodeStore:
    """The node's database. ``session()`` yields an ORM session committed on success, rolled back on error; a
    fault of the file inside it (locked, read-only, full, damaged) is raised as a ``NodeStoreError``."""

    def __init__(self, path: Path, busy_timeout_s: float = BUSY_TIMEOUT_S) -> None:
        self.path = path
        self.busy_timeout_s = busy_timeout_s
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except PermissionError as error:
            raise NodeStoreReadOnly(path, f"its folder cannot be created: {error.strerror}") from error
        except OSError as error:
            raise NodeStoreUnavailable(path, f"its folder cannot be created: {error.strerror}") from error
        share_with_group(path)
        check_store_file(path, busy_timeout_s, known_revisions())
        with store_faults(path, busy_timeout_s):
            self.backup = backup_before_upgrade(path, known_revisions())  # before any migration touches it
        self.engine = make_engine(path, busy_timeout_s)
        try:
            upgrade(self.engine)
            probe_writable(self.engine)
        except (DBAPIError, sqlite3.Error) as error:
            self.engine.dispose()
            # Not a fault of the file itself: its tables are not what its revision says.
            detail = f"its schema cannot be brought up to date: {sqlite_error_of(error) or error}"
            raise store_fault(error, path, busy_timeout_s) or NodeStoreDamaged(path, detail) from error
        except BaseException:
            self.engine.dispose()
            raise
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @classmethod
    def in_home(cls, home: str | os.PathLike[str] | None = None) -> NodeStore:
        return cls(resolve_home(home) / STORE_FILE)

    @contextmanager
    def session(self) -> Iterator[Session]:
        with store_faults(self.path, self.busy_timeout_s), self._sessions.begin() as session:
            yield session

    def close(self) -> None:
        self.engine.dispose()
