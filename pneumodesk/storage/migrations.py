"""The body of an Alembic ``env.py``, shared by the node store's and the coordinator's migrations.

Runs on the connection the application hands over (``config.attributes["connection"]``), or, when Alembic is run by
hand, on ``sqlalchemy.url`` from the config or ``-x url=...``. SQLite needs batch mode to alter tables.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, MetaData, create_engine


def run_migrations(metadata: MetaData) -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection, metadata)
        return
    url = context.config.get_main_option("sqlalchemy.url") or context.get_x_argument(as_dictionary=True)["url"]
    with create_engine(url).begin() as own_connection:
        _run(own_connection, metadata)


def _run(connection: Connection, metadata: MetaData) -> None:
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
