"""Recognised peers: identity keys of other hospitals' nodes that this hospital's admin pinned by fingerprint.

Revision ID: r20261204_0004
Revises: r20261204_0003
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "r20261204_0004"
down_revision = "r20261204_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "recognised_peers",
        sa.Column("fingerprint", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("node_id", sa.String(128), nullable=False),
        sa.Column("recognised_at", sa.DateTime, nullable=False),
        sa.Column("recognised_by", sa.String(64), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("recognised_peers")
