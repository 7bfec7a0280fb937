"""The node store: one SQLite file per node in the app home, opened with SQLAlchemy 2 and brought to the newest
schema by the Alembic revisions shipped in ``migrations/``.

Invariants: every transaction starts with ``BEGIN IMMEDIATE`` so concurrent writers (the GUI and a CLI run) are
serialised and the audit chain cannot fork; foreign keys are enforced; the schema only ever changes by migration.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import platformdirs
from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry

APP_NAME = "PneumoDesk"
HOME_ENV = "PNEUMODESK_HOME"
STORE_FILE = "node.sqlite3"
MIGRATIONS = Path(__file__).with_name("migrations")


def resolve_home(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The app data folder: ``explicit``, else ``$PNEUMODESK_HOME``, else the user data folder. Created if missing."""
    chosen = explicit or os.environ.get(HOME_ENV) or platformdirs.user_data_dir(APP_NAME, appauthor=False)
    home = Path(chosen)
    home.mkdir(parents=True, exist_ok=True)
    return home


def make_engine(path: Path) -> Engine:
    """An engine on the SQLite file at ``path`` with the pragmas and transaction mode the store relies on."""
    engine = create_engine(f"sqlite:///{path}", connect_args={"timeout": 30})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: sqlite3.Connection, _record: ConnectionPoolEntry) -> None:
        dbapi_connection.isolation_level = None  # let the "begin" hook below issue BEGIN itself
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
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


def upgrade(engine: Engine) -> None:
    """Bring the store to the newest revision (a no-op when it is already there)."""
    with engine.begin() as connection:
        command.upgrade(alembic_config(connection), "head")


class NodeStore:
    """The node's database. ``session()`` yields an ORM session committed on success, rolled back on error."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self.engine = make_engine(path)
        upgrade(self.engine)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @classmethod
    def in_home(cls, home: str | os.PathLike[str] | None = None) -> NodeStore:
        return cls(resolve_home(home) / STORE_FILE)

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self._sessions.begin() as session:
            yield session

    def close(self) -> None:
        self.engine.dispose()
