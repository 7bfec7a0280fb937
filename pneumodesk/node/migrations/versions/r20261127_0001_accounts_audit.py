"""Accounts, roles and the hash-chained audit log (the node store's first revision).

Revision ID: r20261127_0001
Revises:
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "r20261127_0001"
down_revision = None
branch_labels = None
depends_on = None

GENESIS = "0" * 64

# Frozen copy of the default roles at this revision (later changes to permissions.py do not rewrite history).
DEFAULT_ROLES = {
    "Clinician": ["export_reports", "predict", "review"],
    "Researcher": ["manage_datasets", "predict"],
    "Compliance officer": ["view_audit"],
    "Administrator": ["approve_training", "manage_accounts", "manage_datasets", "manage_federation", "view_audit"],
    "Owner": ["approve_training", "export_reports", "manage_accounts", "manage_datasets", "manage_federation",
              "predict", "review", "view_audit"],
}


def upgrade() -> None:
    roles = op.create_table(
        "roles",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("position", sa.Integer, nullable=False),
    )
    role_permissions = op.create_table(
        "role_permissions",
        sa.Column("role_name", sa.String(64), sa.ForeignKey("roles.name", ondelete="CASCADE"), primary_key=True),
        sa.Column("permission", sa.String(32), primary_key=True),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("username", sa.String(32), nullable=False, unique=True),
        sa.Column("display_name", sa.String(128), nullable=False),
        sa.Column("password_hash", sa.String(256), nullable=False),
        sa.Column("role_name", sa.String(64), sa.ForeignKey("roles.name"), nullable=False),
        sa.Column("disabled", sa.Boolean, nullable=False),
        sa.Column("must_change_password", sa.Boolean, nullable=False),
        sa.Column("failed_logins", sa.Integer, nullable=False),
        sa.Column("locked_until", sa.DateTime, nullable=True),
        sa.Column("created", sa.DateTime, nullable=False),
        sa.Column("password_changed", sa.DateTime, nullable=False),
        sa.Column("last_login", sa.DateTime, nullable=True),
    )
    op.create_table(
        "audit_entries",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("time", sa.String(40), nullable=False),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("target", sa.String(128), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("details", sa.Text, nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("entry_hash", sa.String(64), nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_audit_entries_action", "audit_entries", ["action"])
    head = op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("last_id", sa.Integer, nullable=False),
        sa.Column("last_hash", sa.String(64), nullable=False),
        sa.Column("count", sa.Integer, nullable=False),
    )
    # Append-only: the application never updates or deletes an audit entry, and SQLite refuses it too.
    op.execute(
        "CREATE TRIGGER audit_entries_no_update BEFORE UPDATE ON audit_entries "
        "BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END"
    )
    op.execute(
        "CREATE TRIGGER audit_entries_no_delete BEFORE DELETE ON audit_entries "
        "BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END"
    )
    op.bulk_insert(roles, [{"name": name, "position": i} for i, name in enumerate(DEFAULT_ROLES)])
    op.bulk_insert(
        role_permissions,
        [{"role_name": name, "permission": p} for name, perms in DEFAULT_ROLES.items() for p in perms],
    )
    op.bulk_insert(head, [{"id": 1, "last_id": 0, "last_hash": GENESIS, "count": 0}])


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS audit_entries_no_delete")
    op.execute("DROP TRIGGER IF EXISTS audit_entries_no_update")
    for table in ("audit_head", "audit_entries", "users", "role_permissions", "roles"):
        op.drop_table(table)
