"""A real PostgreSQL server for the test suite: the ``pgserver`` package's binaries, one server per test session.

The server listens on a unix socket in its own data folder only (no TCP port, nothing reachable from outside).
Run as root, ``pgserver`` starts PostgreSQL as the unprivileged system user ``pgserver`` (PostgreSQL refuses to
run as root), creating that user with ``useradd`` the first time. Every test gets a fresh database
(``fresh_database_url``), so tests never see each other's rows.

When the server cannot be started the tests that need it are skipped with the reason — except under CI
(``CI=true``), where that is a failure: CI must prove the coordinator on PostgreSQL, not skip it.
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

_counter = itertools.count()


class PostgresServer:
    """A running server; ``fresh_database_url`` creates an empty database and names it in an SQLAlchemy URL."""

    def __init__(self, admin_uri: str, handle: object) -> None:
        self.admin_uri = admin_uri  # libpq URI of the superuser's "postgres" database
        self.handle = handle  # the pgserver.PostgresServer (kept alive: it stops the server when collected)

    @property
    def socket_dir(self) -> str:
        return parse_qs(urlsplit(self.admin_uri).query)["host"][0]

    def restart(self) -> None:
        """Stop the server (fast: open connections are cut) and start it again with the same options, as an
        operator's restart or a failover would; returns once it accepts connections."""
        from pgserver._commands import pg_ctl

        pgdata = self.handle.pgdata  # type: ignore[attr-defined]
        pg_ctl(["-w", "-m", "fast", "restart"], pgdata=pgdata, user=self.handle.system_user,  # type: ignore[attr-defined]
               timeout=60)

    def server_pid(self) -> int:
        """The postmaster's process id (its children are the connections' backends)."""
        pgdata = Path(self.handle.pgdata)  # type: ignore[attr-defined]
        return int((pgdata / "postmaster.pid").read_text().splitlines()[0])

    def tool(self, name: str) -> str:
        """The path of one of the server's client programs (pg_dump, pg_restore, psql)."""
        from pgserver._commands import POSTGRES_BIN_PATH

        return str(POSTGRES_BIN_PATH / name)

    @staticmethod
    def libpq_uri(database_url: str) -> str:
        """The libpq form of an SQLAlchemy ``postgresql+psycopg://`` URL (what pg_dump and psql take)."""
        return database_url.replace("postgresql+psycopg://", "postgresql://", 1)

    def fresh_database_url(self) -> str:
        import psycopg

        name = f"coordinator_{os.getpid()}_{next(_counter)}"
        with psycopg.connect(self.admin_uri, autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql+psycopg://postgres@/{name}?host={self.socket_dir}"


def _refuse(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"PostgreSQL is required under CI: {reason}", pytrace=False)
    pytest.skip(f"PostgreSQL unavailable: {reason}")


def start_postgres_server() -> Iterator[PostgresServer]:
    """Start a server in a fresh folder (outside pytest's tmp_path: its parents must be traversable by the
    ``pgserver`` user), yield it, then stop it and delete the folder."""
    try:
        with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset (as under CI)
            warnings.simplefilter("ignore")
            import pgserver
        import psycopg  # noqa: F401  (the coordinator's driver: without it the server is no use)
    except ImportError as error:
        _refuse(f"{error.name} is not installed (pip install -e '.[dev]')")
        return
    folder = Path(tempfile.mkdtemp(prefix="pneumodesk-pg-"))
    try:
        try:
            handle = pgserver.get_server(folder / "data", cleanup_mode="stop")
            uri = handle.get_uri()
        except Exception as error:  # any failure to start is reported as the reason, not as a crash
            _refuse(f"the server did not start ({type(error).__name__}: {error})")
            return
        try:
            yield PostgresServer(uri, handle)
        finally:
            handle.cleanup()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
