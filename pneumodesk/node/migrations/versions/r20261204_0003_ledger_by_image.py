"""The images of each dataset by content digest, so the privacy ledger is charged to images, not to a row id.

Existing datasets get their images by hashing the files they list (training and validation); a file that cannot
be read now gets a stand-in key unique to its dataset, so the dataset's own spending still counts on it. Removed
datasets had their file lists deleted, so their ledger entries stay on their row only.

Revision ID: r20261204_0003
Revises: r20261127_0002
Create Date: 2026-12-04
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import sqlalchemy as sa
from alembic import op

revision = "r20261204_0003"
down_revision = "r20261127_0002"
branch_labels = None
depends_on = None

TABLE = "dataset_images"
MESSAGE = "the images of a dataset are append-only"
CHUNK = 1 << 20


def _digest(path: Path) -> str | None:
    digest = hashlib.sha256()
    try:
        with path.open("rb") as handle:
            while chunk := handle.read(CHUNK):
                digest.update(chunk)
    except OSError:
        return None
    return digest.hexdigest()


def _stand_in(dataset_id: int, relative: str) -> str:
    """A key no real image has (a digest of a label, not of image bytes), unique to the dataset's file."""
    return hashlib.sha256(f"pneumodesk unhashed image\0{dataset_id}\0{relative}".encode()).hexdigest()


def upgrade() -> None:
    op.create_table(
        TABLE,
        sa.Column("dataset_id", sa.Integer, sa.ForeignKey("datasets.id"), primary_key=True),
        sa.Column("digest", sa.String(64), primary_key=True),
    )
    op.create_index("ix_dataset_images_digest", TABLE, ["digest"])
    connection = op.get_bind()
    datasets = connection.execute(sa.text("select id, kind, source from datasets where removed is null")).all()
    for dataset_id, kind, source in datasets:
        base = Path(source) if kind == "folder" else Path(source).parent
        files = connection.execute(sa.text(
            "select path from dataset_files where dataset_id = :id and split in ('training', 'validation') "
            "order by id"), {"id": dataset_id}).scalars().all()
        digests = {_digest(base / relative) or _stand_in(dataset_id, relative) for relative in files}
        if digests:
            connection.execute(sa.text(f"insert into {TABLE} (dataset_id, digest) values (:id, :digest)"),
                               [{"id": dataset_id, "digest": digest} for digest in sorted(digests)])
    for verb in ("UPDATE", "DELETE"):
        op.execute(f"CREATE TRIGGER {TABLE}_no_{verb.lower()} BEFORE {verb} ON {TABLE} "
                   f"BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END")


def downgrade() -> None:
    for verb in ("update", "delete"):
        op.execute(f"DROP TRIGGER IF EXISTS {TABLE}_no_{verb}")
    op.drop_index("ix_dataset_images_digest", TABLE)
    op.drop_table(TABLE)
