"""Operator accounts: creation, enabling and disabling, login and token checks.

Invariants: passwords are stored as argon2id hashes only and never logged; every change and every login attempt is
audited (a failed attempt names the account only if it exists); ``authenticate`` re-reads the account on every call,
so disabling an account or changing its role takes effect at once.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from pneumodesk.federation.messages import TokenResponse

from ..audit import SYSTEM, AuditLog
from ..auth import ROLES, Claims, TokenAuthority, hash_password, verify_password
from ..config import CoordinatorConfig
from ..db import Operator, utcnow
from ..errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthorised


class OperatorService:
    def __init__(self, sessions: sessionmaker[Session], audit: AuditLog, tokens: TokenAuthority,
                 config: CoordinatorConfig) -> None:
        self._sessions, self._audit, self._tokens, self._config = sessions, audit, tokens, config

    def create(self, username: str, password: str, role: str = "operator", *, actor: str = SYSTEM) -> None:
        if role not in ROLES:
            raise InvalidInput(f"Unknown role {role!r}; roles are {', '.join(ROLES)}.")
        if not 1 <= len(username) <= 64 or not username.isprintable() or username != username.strip():
            raise InvalidInput("Operator user names have 1 to 64 printable characters, without surrounding spaces.")
        with self._sessions() as session:
            if _operator(session, username):
                raise Conflict(f"Operator {username!r} already exists.")
            session.add(Operator(username=username, password_hash=hash_password(password), role=role, active=True,
                                 created=utcnow()))
            self._audit.add(session, actor, "operator.create", username, {"role": role})
            session.commit()

    def set_active(self, username: str, active: bool, *, actor: str = SYSTEM) -> None:
        """Disable (or enable again) an operator account; a disabled account's tokens stop working at once."""
        with self._sessions() as session:
            operator = _operator(session, username)
            if operator is None:
                raise NotFound(f"There is no operator {username!r}.")
            operator.active = active
            self._audit.add(session, actor, "operator.enable" if active else "operator.disable", username)
            session.commit()

    def list(self) -> list[dict[str, object]]:
        with self._sessions() as session:
            return [{"username": o.username, "role": o.role, "active": o.active, "created": o.created.isoformat()}
                    for o in session.scalars(select(Operator).order_by(Operator.id))]

    def login(self, username: str, password: str, *, source: str | None = None) -> TokenResponse:
        """A token for a valid, active account. Audited either way (the attempted name only if it is an account)."""
        with self._sessions() as session:
            operator = _operator(session, username)
        valid = verify_password(operator.password_hash if operator else None, password)
        details: dict[str, object] | None = {"source": source} if source else None
        if not valid or operator is None or not operator.active:
            self._audit.append("anonymous", "operator.login_failed", username if operator else None, details)
            raise Unauthorised("Wrong user name or password.")
        seconds = self._config.operator_token_seconds
        token = self._tokens.issue("operator", f"operator:{username}", seconds, role=operator.role)
        self._audit.append(username, "operator.login", username, details)
        return TokenResponse(access_token=token, expires_in=seconds)

    def authenticate(self, token: str, need: str = "viewer") -> str:
        """The operator's user name, if the token is valid and the account (still) has the role ``need``."""
        return self.authorise(self._tokens.verify(token, "operator"), need)

    def authorise(self, claims: Claims, need: str = "viewer") -> str:
        """``authenticate`` for claims already verified as an operator token's."""
        username = claims.subject.removeprefix("operator:")
        with self._sessions() as session:
            operator = _operator(session, username)
        if operator is None or not operator.active:
            raise Unauthorised("This operator account no longer exists or is disabled.")
        if need == "operator" and operator.role != "operator":
            raise Forbidden("This action needs the operator role; your account is a viewer.")
        return username


def _operator(session: Session, username: str) -> Operator | None:
    return session.scalars(select(Operator).where(Operator.username == username)).first()
