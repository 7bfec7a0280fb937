"""Fixtures for end-to-end coordinator tests: an initialised coordinator folder and a running server."""

from __future__ import annotations

import pytest

from tests.postgres_server import start_postgres_server

from .coordinator_harness import Coordinator, init_coordinator


@pytest.fixture(scope="session")
def postgres_server():
    """One real PostgreSQL server for the session (started on first use; skipped with the reason, or failed
    under CI, when it cannot start)."""
    yield from start_postgres_server()


@pytest.fixture
def database_url(request) -> str:
    """The coordinator's database: SQLite in its folder (``""``), or with ``on_both_databases`` a fresh PostgreSQL
    database as well."""
    if getattr(request, "param", "sqlite") == "sqlite":
        return ""
    return request.getfixturevalue("postgres_server").fresh_database_url()


@pytest.fixture
def coordinator_dir(tmp_path, tiny_bundle_dir, database_url):
    return init_coordinator(tmp_path / "coordinator", tiny_bundle_dir, database_url)


@pytest.fixture
def coordinator(coordinator_dir):
    server = Coordinator(coordinator_dir).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def shared_coordinator(tmp_path_factory, tiny_bundle_dir):
    """One server for a module's tests that do not disturb each other (saves a start per test)."""
    server = Coordinator(init_coordinator(tmp_path_factory.mktemp("shared") / "coordinator", tiny_bundle_dir)).start()
    yield server
    server.stop()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def shared_coordinator_on_both(request, tmp_path_factory, tiny_bundle_dir):
    """``shared_coordinator`` once on SQLite and once on a real PostgreSQL server (tests run against each)."""
    url = "" if request.param == "sqlite" else request.getfixturevalue("postgres_server").fresh_database_url()
    directory = init_coordinator(tmp_path_factory.mktemp(request.param) / "coordinator", tiny_bundle_dir, url)
    server = Coordinator(directory).start()
    yield server
    server.stop()
