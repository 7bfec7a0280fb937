"""Persistence: SQLAlchemy 2 tables, the engine (SQLite in WAL mode by default, any SQLAlchemy URL) and migrations.

Invariants: the schema is created and changed only by the Alembic revisions in ``migrations/`` (never by
``create_all``); every timestamp is stored as naive UTC and read back timezone-aware.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import (
    Boolean,
    Engine,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    event,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from pneumodesk.storage.columns import UTCDateTime

MIGRATIONS = Path(__file__).with_name("migrations")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Base(DeclarativeBase):
    pass


_Row = TypeVar("_Row", bound=Base)


def get_row(session: Session, table: type[_Row], key: object) -> _Row:
    """The row ``key`` of ``table`` that the schema's foreign keys guarantee (a missing one is a bug, not a 404)."""
    row = session.get(table, key)
    if row is None:
        raise LookupError(f"{table.__name__} {key!r} is missing from the coordinator's database.")
    return row


class Operator(Base):
    __tablename__ = "operators"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(256))  # argon2id only
    role: Mapped[str] = mapped_column(String(16))  # operator | viewer
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class EnrolmentCode(Base):
    """One-time codes, stored as their sha256 only: a database leak does not reveal usable codes."""

    __tablename__ = "enrolment_codes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    expires: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    used: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class Node(Base):
    __tablename__ = "nodes"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    public_key: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    status: Mapped[str] = mapped_column(String(16))  # pending | approved | revoked
    created: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    decided: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class Challenge(Base):
    """A single-use nonce a node must sign; deleted when used or expired."""

    __tablename__ = "challenges"
    nonce: Mapped[str] = mapped_column(String(64), primary_key=True)
    node_id: Mapped[str] = mapped_column(ForeignKey("nodes.id", ondelete="CASCADE"))
    expires: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class ModelVersion(Base):
    """A global model: weights in the blob store by sha256; lineage holds counts, never which node sent what."""

    __tablename__ = "model_versions"
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64))
    architecture: Mapped[str] = mapped_column(String(64))
    card_json: Mapped[str] = mapped_column(Text)
    size_bytes: Mapped[int] = mapped_column(Integer)
    created: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    parent_version: Mapped[int | None] = mapped_column(ForeignKey("model_versions.version"), nullable=True)
    plan_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    round_number: Mapped[int | None] = mapped_column(Integer, nullable=True)
    contributors: Mapped[int | None] = mapped_column(Integer, nullable=True)
    total_examples: Mapped[int | None] = mapped_column(Integer, nullable=True)


class Plan(Base):
    __tablename__ = "plans"
    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    canonical_json: Mapped[str] = mapped_column(Text)
    base_version: Mapped[int] = mapped_column(ForeignKey("model_versions.version"))
    status: Mapped[str] = mapped_column(String(16))  # active | finished
    published: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class Round(Base):
    """One round of a plan. ``state`` follows rounds.TRANSITIONS; ``phase`` names the submission kind expected now."""

    __tablename__ = "rounds"
    __table_args__ = (UniqueConstraint("plan_sha256", "number"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    plan_sha256: Mapped[str] = mapped_column(ForeignKey("plans.sha256"))
    number: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16))
    phase: Mapped[str] = mapped_column(String(32))
    model_version: Mapped[int] = mapped_column(ForeignKey("model_versions.version"))
    opened: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    deadline: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    revision: Mapped[int] = mapped_column(Integer, default=0)
    result_version: Mapped[int | None] = mapped_column(ForeignKey("model_versions.version"), nullable=True)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    #: The current phase's deadline was extended once already (secure consistency phase); in the database, not in a
    #: process's memory, so whichever worker sweeps next knows it.
    phase_extended: Mapped[bool] = mapped_column(Boolean, default=False)


class Submission(Base):
    """What one node handed in for one phase of one round; unique per (round, phase, node): retries count once.

    After aggregation the update blob is deleted; the row keeps only its hash and example count.
    """

    __tablename__ = "submissions"
    __table_args__ = (UniqueConstraint("round_id", "phase", "node_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    round_id: Mapped[int] = mapped_column(ForeignKey("rounds.id"))
    phase: Mapped[str] = mapped_column(String(32))
    node_id: Mapped[str] = mapped_column(ForeignKey("nodes.id"))
    blob_sha256: Mapped[str] = mapped_column(String(64))
    examples: Mapped[int] = mapped_column(Integer)
    received: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class RateLimitHit(Base):
    """One counted hit of a rate limit shared by every worker (``shared_limits``); the key is stored as sha256."""

    __tablename__ = "rate_limit_hits"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    key_sha256: Mapped[str] = mapped_column(String(64))
    at: Mapped[float] = mapped_column(Float)  # seconds since the epoch


class AuditRecord(Base):
    """One audited action. Append-only: the migration adds triggers that refuse UPDATE and DELETE."""

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    actor: Mapped[str] = mapped_column(String(160))
    action: Mapped[str] = mapped_column(String(48))
    target: Mapped[str | None] = mapped_column(String(200), nullable=True)
    details: Mapped[str | None] = mapped_column(Text, nullable=True)  # JSON object


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite gets WAL, a busy timeout and foreign keys on every connection."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(connection: Any, _record: Any) -> None:
            cursor = connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    return create_engine(url, pool_pre_ping=True)


def make_sessions(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def upgrade_database(engine: Engine) -> None:
    """Bring the schema to the newest Alembic revision (idempotent)."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
