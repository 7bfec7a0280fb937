"""Initial coordinator schema: operators, enrolment codes, nodes, challenges, models, plans, rounds, submissions.

Revision ID: 20261127_0001
Revises:
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "20261127_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "operators",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("username", sa.String(64), nullable=False, unique=True),
        sa.Column("password_hash", sa.String(256), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("created", sa.DateTime, nullable=False),
    )
    op.create_table(
        "enrolment_codes",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("code_sha256", sa.String(64), nullable=False, unique=True),
        sa.Column("expires", sa.DateTime, nullable=False),
        sa.Column("used", sa.DateTime, nullable=True),
        sa.Column("created", sa.DateTime, nullable=False),
    )
    op.create_table(
        "nodes",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("public_key", sa.LargeBinary(32), nullable=False, unique=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created", sa.DateTime, nullable=False),
        sa.Column("decided", sa.DateTime, nullable=True),
    )
    op.create_table(
        "challenges",
        sa.Column("nonce", sa.String(64), primary_key=True),
        sa.Column("node_id", sa.String(32), sa.ForeignKey("nodes.id", ondelete="CASCADE"), nullable=False),
        sa.Column("expires", sa.DateTime, nullable=False),
    )
    op.create_table(
        "model_versions",
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("architecture", sa.String(64), nullable=False),
        sa.Column("card_json", sa.Text, nullable=False),
        sa.Column("size_bytes", sa.Integer, nullable=False),
        sa.Column("created", sa.DateTime, nullable=False),
        sa.Column("parent_version", sa.Integer, sa.ForeignKey("model_versions.version"), nullable=True),
        sa.Column("plan_sha256", sa.String(64), nullable=True),
        sa.Column("round_number", sa.Integer, nullable=True),
        sa.Column("contributors", sa.Integer, nullable=True),
        sa.Column("total_examples", sa.Integer, nullable=True),
    )
    op.create_table(
        "plans",
        sa.Column("sha256", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("canonical_json", sa.Text, nullable=False),
        sa.Column("base_version", sa.Integer, sa.ForeignKey("model_versions.version"), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("published", sa.DateTime, nullable=False),
    )
    op.create_table(
        "rounds",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("plan_sha256", sa.String(64), sa.ForeignKey("plans.sha256"), nullable=False),
        sa.Column("number", sa.Integer, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("phase", sa.String(32), nullable=False),
        sa.Column("model_version", sa.Integer, sa.ForeignKey("model_versions.version"), nullable=False),
        sa.Column("opened", sa.DateTime, nullable=False),
        sa.Column("deadline", sa.DateTime, nullable=False),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("result_version", sa.Integer, sa.ForeignKey("model_versions.version"), nullable=True),
        sa.Column("reason", sa.Text, nullable=True),
        sa.UniqueConstraint("plan_sha256", "number"),
    )
    op.create_index("ix_rounds_state", "rounds", ["state"])
    op.create_table(
        "submissions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("round_id", sa.Integer, sa.ForeignKey("rounds.id"), nullable=False),
        sa.Column("phase", sa.String(32), nullable=False),
        sa.Column("node_id", sa.String(32), sa.ForeignKey("nodes.id"), nullable=False),
        sa.Column("blob_sha256", sa.String(64), nullable=False),
        sa.Column("examples", sa.Integer, nullable=False),
        sa.Column("received", sa.DateTime, nullable=False),
        sa.UniqueConstraint("round_id", "phase", "node_id"),
    )


def downgrade() -> None:
    for table in ("submissions", "rounds", "plans", "model_versions", "challenges", "nodes", "enrolment_codes",
                  "operators"):
        op.drop_table(table)
