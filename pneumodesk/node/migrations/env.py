"""Alembic environment of the node store: runs on the connection ``store.upgrade`` hands over, or on
``sqlalchemy.url`` when run by hand (``alembic -c`` with a config whose script_location is this folder)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from pneumodesk.node.models import Base

connection = context.config.attributes.get("connection")
if connection is None:
    url = context.config.get_main_option("sqlalchemy.url") or context.get_x_argument(as_dictionary=True)["url"]
    with create_engine(url).begin() as own_connection:
        context.configure(connection=own_connection, target_metadata=Base.metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
else:
    context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
