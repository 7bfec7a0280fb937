"""The node store's tables (SQLAlchemy 2). The schema is created and changed only by the Alembic revisions in
``migrations/``; later issues add datasets, approvals and the privacy ledger as new tables and new revisions.

Invariants: timestamps are stored as naive UTC and read back UTC-aware; ``users.password_hash`` holds argon2 hashes
only; ``audit_entries`` is append-only (SQLite triggers refuse UPDATE and DELETE) and hash-chained (see ``audit``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Boolean, DateTime, ForeignKey, Integer, String, Text, TypeDecorator
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Aware UTC datetimes in and out; naive ones are refused so local time can never slip in."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not accepted; use UTC-aware ones")
        return value.astimezone(dt.UTC).replace(tzinfo=None)

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        return None if value is None else value.replace(tzinfo=dt.UTC)


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
