"""Round state every worker shares: whether the current secure phase's deadline was already extended.

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


def downgrade() -> None:
    with op.batch_alter_table("rounds") as batch:
        batch.drop_column("phase_extended")
