"""Alembic environment: runs the coordinator's migrations on the connection handed over by ``db.upgrade_database``
(or on ``-x url=...`` when Alembic is run by hand)."""

from __future__ import annotations

from pneumodesk.coordinator.db import Base
from pneumodesk.storage.migrations import run_migrations

run_migrations(Base.metadata)
