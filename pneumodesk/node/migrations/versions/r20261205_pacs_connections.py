"""PACS connections: the DICOMweb and DIMSE peers this workstation may query (settings only, secrets in the keyring).

Revision ID: r20261205_pacs_connections
Revises: r20261204_0004
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "r20261205_pacs_connections"
down_revision = "r20261204_0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pacs_connections",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("protocol", sa.String(16), nullable=False),
        sa.Column("settings", sa.Text, nullable=False),
        sa.Column("changed_at", sa.DateTime, nullable=False),
        sa.Column("changed_by", sa.String(64), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("pacs_connections")
