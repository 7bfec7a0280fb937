"""Datasets, node policy, approvals, privacy ledger, federation membership, egress log and local models.

Revision ID: r20261127_0002
Revises: r20261127_0001
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "r20261127_0002"
down_revision = "r20261127_0001"
branch_labels = None
depends_on = None

APPEND_ONLY = {"privacy_ledger": "the privacy ledger is append-only", "egress_log": "the egress log is append-only"}


def upgrade() -> None:
    op.create_table(
        "datasets",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("normal", sa.Integer, nullable=False),
        sa.Column("pneumonia", sa.Integer, nullable=False),
        sa.Column("training_count", sa.Integer, nullable=False),
        sa.Column("validation_count", sa.Integer, nullable=False),
        sa.Column("registered", sa.DateTime, nullable=False),
        sa.Column("registered_by", sa.String(64), nullable=False),
        sa.Column("removed", sa.DateTime, nullable=True),
    )
    op.create_table(
        "dataset_files",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("dataset_id", sa.Integer, sa.ForeignKey("datasets.id", ondelete="CASCADE"), nullable=False),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("label", sa.Integer, nullable=False),
        sa.Column("split", sa.String(12), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
    )
    op.create_index("ix_dataset_files_dataset_id", "dataset_files", ["dataset_id"])
    op.create_table(
        "node_policy",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("policy_json", sa.Text, nullable=False),
        sa.Column("updated", sa.DateTime, nullable=False),
        sa.Column("updated_by", sa.String(64), nullable=False),
    )
    op.create_table(
        "approvals",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("plan_sha256", sa.String(64), nullable=False),
        sa.Column("plan_json", sa.Text, nullable=False),
        sa.Column("dataset_id", sa.Integer, sa.ForeignKey("datasets.id"), nullable=False),
        sa.Column("coordinator_url", sa.Text, nullable=False),
        sa.Column("epsilon_total", sa.Float, nullable=True),
        sa.Column("approved_by", sa.String(64), nullable=False),
        sa.Column("approved_at", sa.DateTime, nullable=False),
        sa.Column("withdrawn_at", sa.DateTime, nullable=True),
        sa.Column("withdrawn_by", sa.String(64), nullable=True),
    )
    op.create_index("ix_approvals_plan_sha256", "approvals", ["plan_sha256"])
    op.create_table(
        "privacy_ledger",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("time", sa.DateTime, nullable=False),
        sa.Column("dataset_id", sa.Integer, sa.ForeignKey("datasets.id"), nullable=False),
        sa.Column("plan_sha256", sa.String(64), nullable=False),
        sa.Column("round_number", sa.Integer, nullable=False),
        sa.Column("epsilon", sa.Float, nullable=False),
        sa.Column("delta", sa.Float, nullable=False),
        sa.Column("noise_multiplier", sa.Float, nullable=False),
        sa.Column("sample_rate", sa.Float, nullable=False),
        sa.Column("steps", sa.Integer, nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_privacy_ledger_dataset_id", "privacy_ledger", ["dataset_id"])
    op.create_table(
        "federation_membership",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("coordinator_url", sa.Text, nullable=False),
        sa.Column("federation", sa.String(128), nullable=False),
        sa.Column("node_id", sa.String(128), nullable=False),
        sa.Column("node_name", sa.String(128), nullable=False),
        sa.Column("ca_pem_sha256", sa.String(64), nullable=False),
        sa.Column("ca_path", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("enrolled_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "egress_log",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("time", sa.DateTime, nullable=False),
        sa.Column("method", sa.String(8), nullable=False),
        sa.Column("endpoint", sa.Text, nullable=False),
        sa.Column("bytes_sent", sa.Integer, nullable=False),
        sa.Column("bytes_received", sa.Integer, nullable=False),
        sa.Column("status", sa.Integer, nullable=True),
        sa.Column("purpose", sa.String(64), nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "local_models",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("source", sa.String(128), nullable=False),
        sa.Column("model_version", sa.String(128), nullable=False),
        sa.Column("architecture", sa.String(64), nullable=False),
        sa.Column("weights_sha256", sa.String(64), nullable=False),
        sa.Column("plan_sha256", sa.String(64), nullable=True),
        sa.Column("round_number", sa.Integer, nullable=True),
        sa.Column("global_version", sa.Integer, nullable=True),
        sa.Column("metrics", sa.Text, nullable=False),
        sa.Column("baseline_metrics", sa.Text, nullable=False),
        sa.Column("added", sa.DateTime, nullable=False),
        sa.Column("decided_by", sa.String(64), nullable=True),
        sa.Column("decided_at", sa.DateTime, nullable=True),
    )
    # Append-only, like audit_entries: the application never updates or deletes these rows, and SQLite refuses it.
    for table, message in APPEND_ONLY.items():
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{message}'); END"
            )


def downgrade() -> None:
    for table in APPEND_ONLY:
        for verb in ("update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_{verb}")
    for table in ("local_models", "egress_log", "federation_membership", "privacy_ledger", "approvals",
                  "node_policy", "dataset_files", "datasets"):
        op.drop_table(table)
