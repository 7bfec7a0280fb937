"""Alembic environment of the node store: runs on the connection ``store.upgrade`` hands over, or on
``sqlalchemy.url`` when run by hand (``alembic -c`` with a config whose script_location is this folder)."""

from __future__ import annotations

from pneumodesk.node.models import Base
from pneumodesk.storage.migrations import run_migrations

run_migrations(Base.metadata)
