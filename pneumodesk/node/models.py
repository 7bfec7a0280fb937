"""The node store's tables (SQLAlchemy 2). The schema is created and changed only by the Alembic revisions in
``migrations/`` (0001: accounts and audit; 0002: datasets, policy, approvals, privacy ledger, membership, egress
log, local models; 0003: the images of each dataset, by content digest, which the privacy ledger is charged to;
0004: recognised peers; clinical_readings: what clinicians read on images, by content digest).

Invariants: timestamps are stored as naive UTC and read back UTC-aware; ``users.password_hash`` holds argon2 hashes
only; ``audit_entries``, ``privacy_ledger``, ``dataset_images`` and ``egress_log`` are append-only (SQLite triggers
refuse UPDATE and DELETE); the audit log is hash-chained (see ``audit``). Dataset file lists hold paths relative to
the dataset's source; nothing in these tables ever leaves the node.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, Float, ForeignKey, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from pneumodesk.storage.columns import UTCDateTime


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Base(DeclarativeBase):
    pass


class Role(Base):
    __tablename__ = "roles"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, default=0)  # display order


class RolePermission(Base):
    __tablename__ = "role_permissions"
    role_name: Mapped[str] = mapped_column(ForeignKey("roles.name", ondelete="CASCADE"), primary_key=True)
    permission: Mapped[str] = mapped_column(String(32), primary_key=True)


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(32), unique=True)  # lower case
    display_name: Mapped[str] = mapped_column(String(128))
    password_hash: Mapped[str] = mapped_column(String(256))
    role_name: Mapped[str] = mapped_column(ForeignKey("roles.name"))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=False)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    password_changed: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    last_login: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class AuditEntry(Base):
    """One audit event. ``entry_hash`` = sha256(``prev_hash`` + canonical JSON of the other columns)."""

    __tablename__ = "audit_entries"
    __table_args__ = {"sqlite_autoincrement": True}  # noqa: RUF012 -- ids are never reused, even after a deleted tail
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    time: Mapped[str] = mapped_column(String(40))  # ISO 8601 UTC with microseconds: sorts as text
    username: Mapped[str] = mapped_column(String(64))  # "" for events without a signed-in user
    action: Mapped[str] = mapped_column(String(64), index=True)
    target: Mapped[str] = mapped_column(String(128))
    outcome: Mapped[str] = mapped_column(String(16))  # ok | denied | failed
    details: Mapped[str] = mapped_column(Text)  # canonical JSON object of scalars; never patient data
    prev_hash: Mapped[str] = mapped_column(String(64))
    entry_hash: Mapped[str] = mapped_column(String(64))


class AuditHead(Base):
    """The single row recording the chain's last entry and length, so deleting the newest entries is detected."""

    __tablename__ = "audit_head"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)  # always 1
    last_id: Mapped[int] = mapped_column(Integer)
    last_hash: Mapped[str] = mapped_column(String(64))
    count: Mapped[int] = mapped_column(Integer)


class Dataset(Base):
    """A registered local dataset. Removal is soft (``removed`` set) so ledger entries keep their dataset."""

    __tablename__ = "datasets"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    source: Mapped[str] = mapped_column(Text)  # absolute folder or CSV path
    kind: Mapped[str] = mapped_column(String(8))  # folder | csv
    normal: Mapped[int] = mapped_column(Integer)
    pneumonia: Mapped[int] = mapped_column(Integer)
    training_count: Mapped[int] = mapped_column(Integer)
    validation_count: Mapped[int] = mapped_column(Integer)
    registered: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    registered_by: Mapped[str] = mapped_column(String(64))
    removed: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class DatasetFile(Base):
    """One file of a dataset: ``split`` is training | validation | unreadable (then ``reason`` says why)."""

    __tablename__ = "dataset_files"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"), index=True)
    path: Mapped[str] = mapped_column(Text)  # relative to the folder (or the CSV's folder), POSIX separators
    label: Mapped[int] = mapped_column(Integer)  # 0 normal, 1 pneumonia, -1 unknown (unreadable rows only)
    split: Mapped[str] = mapped_column(String(12))
    reason: Mapped[str] = mapped_column(Text, default="")
    digest: Mapped[str | None] = mapped_column(String(64), nullable=True)  # checked before use when set


class DatasetImage(Base):
    """One image of a dataset, by the sha256 of its bytes: the key the privacy budget is charged to.

    Written with the dataset and kept for good (append-only, SQLite triggers), also after the dataset is removed,
    so every ledger entry of a dataset stays attributed to its images. One row per distinct digest per dataset
    (byte-identical files of one dataset are one image)."""

    __tablename__ = "dataset_images"
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"), primary_key=True)
    digest: Mapped[str] = mapped_column(String(64), primary_key=True, index=True)


class PolicyRow(Base):
    """The single row (id 1) holding the node policy as canonical JSON; absent means the defaults."""

    __tablename__ = "node_policy"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    policy_json: Mapped[str] = mapped_column(Text)
    updated: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    updated_by: Mapped[str] = mapped_column(String(64))


class ApprovalRow(Base):
    __tablename__ = "approvals"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    plan_sha256: Mapped[str] = mapped_column(String(64), index=True)
    plan_json: Mapped[str] = mapped_column(Text)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"))
    coordinator_url: Mapped[str] = mapped_column(Text)
    epsilon_total: Mapped[float | None] = mapped_column(Float, nullable=True)
    approved_by: Mapped[str] = mapped_column(String(64))
    approved_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    withdrawn_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    withdrawn_by: Mapped[str | None] = mapped_column(String(64), nullable=True)


class LedgerRow(Base):
    """One local training run's privacy spending on a dataset: charged to each of the dataset's images
    (``DatasetImage``). Append-only (SQLite triggers)."""

    __tablename__ = "privacy_ledger"
    __table_args__ = {"sqlite_autoincrement": True}  # noqa: RUF012
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    time: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"), index=True)
    plan_sha256: Mapped[str] = mapped_column(String(64))
    round_number: Mapped[int] = mapped_column(Integer)
    epsilon: Mapped[float] = mapped_column(Float)
    delta: Mapped[float] = mapped_column(Float)
    noise_multiplier: Mapped[float] = mapped_column(Float)
    sample_rate: Mapped[float] = mapped_column(Float)
    steps: Mapped[int] = mapped_column(Integer)


class MembershipRow(Base):
    """The single row (id 1) describing this node's federation membership."""

    __tablename__ = "federation_membership"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    coordinator_url: Mapped[str] = mapped_column(Text)
    federation: Mapped[str] = mapped_column(String(128))
    node_id: Mapped[str] = mapped_column(String(128))
    node_name: Mapped[str] = mapped_column(String(128))
    ca_pem_sha256: Mapped[str] = mapped_column(String(64))
    ca_path: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    enrolled_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class EgressRow(Base):
    """One request this node sent. Append-only (SQLite triggers)."""

    __tablename__ = "egress_log"
    __table_args__ = {"sqlite_autoincrement": True}  # noqa: RUF012
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    time: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    method: Mapped[str] = mapped_column(String(8))
    endpoint: Mapped[str] = mapped_column(Text)
    bytes_sent: Mapped[int] = mapped_column(Integer)
    bytes_received: Mapped[int] = mapped_column(Integer)
    status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    purpose: Mapped[str] = mapped_column(String(64))


class LocalModelRow(Base):
    """A model bundle kept under ``home/models/<id>/``; exactly one row has status ``active``."""

    __tablename__ = "local_models"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    status: Mapped[str] = mapped_column(String(12))  # active | candidate | retired | rejected
    source: Mapped[str] = mapped_column(String(128))
    model_version: Mapped[str] = mapped_column(String(128))
    architecture: Mapped[str] = mapped_column(String(64))
    weights_sha256: Mapped[str] = mapped_column(String(64))
    plan_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    round_number: Mapped[int | None] = mapped_column(Integer, nullable=True)
    global_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    metrics: Mapped[str] = mapped_column(Text)  # JSON object
    baseline_metrics: Mapped[str] = mapped_column(Text)  # JSON object
    added: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    decided_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    decided_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class RecognisedPeerRow(Base):
    """A peer node's identity key that this hospital's admin checked out of band and recognised (revision 0003).

    Keyed by the key's fingerprint (``roster_rules.key_fingerprint``): a coordinator cannot make a node it enrolled
    count as recognised without that node holding a recognised key.
    """

    __tablename__ = "recognised_peers"
    fingerprint: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    node_id: Mapped[str] = mapped_column(String(128))  # as the coordinator named the node when it was recognised
    recognised_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    recognised_by: Mapped[str] = mapped_column(String(64))


class PacsConnectionRow(Base):
    """A PACS this workstation may query (``pneumodesk.pacs``). Never holds a secret: a password or token lives in
    the OS keyring under the connection's name."""

    __tablename__ = "pacs_connections"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    protocol: Mapped[str] = mapped_column(String(16))  # dicomweb | dimse
    settings: Mapped[str] = mapped_column(Text)  # canonical JSON of the protocol's settings (no secret)
    changed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    changed_by: Mapped[str] = mapped_column(String(64))


class ClinicalReadingRow(Base):
    """A clinician's reading of one image, keyed by the sha256 of its bytes (the latest reading wins).

    ``path`` is where the image was read from, so a "confirmed cases" dataset can find it again (and refuse it when
    the file there no longer has this digest). Like every table here, it never leaves the node.
    """

    __tablename__ = "clinical_readings"
    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    reading: Mapped[str] = mapped_column(String(12))  # normal | pneumonia | unsure
    path: Mapped[str] = mapped_column(Text)
    recorded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    recorded_by: Mapped[str] = mapped_column(String(64))
