"""State every worker shares: whether the current secure phase's deadline was already extended, and rate-limit hits.

Revision ID: r20261204_multi_worker
Revises: 20261127_0002
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "r20261204_multi_worker"
down_revision = "20261127_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("rounds") as batch:
        batch.add_column(sa.Column("phase_extended", sa.Boolean, nullable=False, server_default=sa.false()))
    op.create_table(
        "rate_limit_hits",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("key_sha256", sa.String(64), nullable=False),
        sa.Column("at", sa.Float, nullable=False),
    )
    op.create_index("ix_rate_limit_hits_key", "rate_limit_hits", ["kind", "key_sha256", "at"])


def downgrade() -> None:
    op.drop_table("rate_limit_hits")
    with op.batch_alter_table("rounds") as batch:
        batch.drop_column("phase_extended")
