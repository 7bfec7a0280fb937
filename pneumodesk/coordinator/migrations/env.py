"""Alembic environment: runs the coordinator's migrations on the connection handed over by ``db.upgrade_database``."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from pneumodesk.coordinator.db import Base

connection = context.config.attributes.get("connection")
if connection is None:  # `alembic` run by hand with -x url=...
    url = context.get_x_argument(as_dictionary=True)["url"]
    with create_engine(url).begin() as connection:
        context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
else:
    context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
