"""Fixtures for end-to-end coordinator tests: an initialised coordinator folder and a running server."""

from __future__ import annotations

import pytest

from .coordinator_harness import Coordinator, init_coordinator


@pytest.fixture
def coordinator_dir(tmp_path, tiny_bundle_dir):
    return init_coordinator(tmp_path / "coordinator", tiny_bundle_dir)


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
