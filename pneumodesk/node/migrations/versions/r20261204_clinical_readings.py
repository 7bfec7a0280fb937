"""Clinical readings: what a clinician read on an image (normal / pneumonia / unsure), by the image's content digest;
and the digest of each dataset file where it is known (confirmed-case datasets check it before every use).

Revision ID: r20261204_clinical_readings
Revises: r20261204_0004
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "r20261204_clinical_readings"
down_revision = "r20261205_pacs_connections"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "clinical_readings",
        sa.Column("digest", sa.String(64), primary_key=True),
        sa.Column("reading", sa.String(12), nullable=False),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("recorded_at", sa.DateTime, nullable=False),
        sa.Column("recorded_by", sa.String(64), nullable=False),
    )
    with op.batch_alter_table("dataset_files") as batch:
        batch.add_column(sa.Column("digest", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("dataset_files") as batch:
        batch.drop_column("digest")
    op.drop_table("clinical_readings")
