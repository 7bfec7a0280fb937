"""Accounts and roles: sign-in with lockout, the Owner's first start, and every account change, each one checked
against the signed-in user's *current* role and written to the audit log.

Invariants:
- no default password exists anywhere: the first Owner is created with a password its creator types;
- the last enabled Owner can be neither disabled nor given another role, and the Owner role keeps every permission;
- only an Owner may grant or take away the Owner role, change an Owner's account, or edit what roles may do;
- after ``MAX_FAILED_LOGINS`` failures in a row an account is locked for ``LOCKOUT``; an administrator may unlock it;
- a password set by someone else (new account, reset) must be changed at the next sign-in.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from . import passwords
from .audit import DENIED, FAILED, OK, AuditLog
from .errors import (
    AccountDisabled,
    AccountError,
    AccountLocked,
    AuthenticationFailed,
    LastOwnerError,
    PasswordRejected,
    PermissionDenied,
    SetupError,
)
from .models import Role, RolePermission, User, utcnow
from .permissions import OWNER, PERMISSION_ACTIONS, Permission
from .session import UserSession
from .store import NodeStore

MAX_FAILED_LOGINS = 5
LOCKOUT = dt.timedelta(minutes=15)
USERNAME_PATTERN = re.compile(r"^[a-z][a-z0-9._-]{2,31}$")
USERNAME_RULE = "3 to 32 characters: lower-case letters, digits, '.', '_' or '-', starting with a letter"


@dataclass(frozen=True)
class AccountView:
    """An account as the Accounts page and ``pneumodesk accounts list`` show it (no hash)."""

    username: str
    display_name: str
    role: str
    disabled: bool
    must_change_password: bool
    locked_until: dt.datetime | None
    last_login: dt.datetime | None

    def locked(self, now: dt.datetime) -> bool:
        return self.locked_until is not None and self.locked_until > now


def _view(user: User) -> AccountView:
    return AccountView(user.username, user.display_name, user.role_name, user.disabled, user.must_change_password,
                       user.locked_until, user.last_login)


class AccountService:
    def __init__(self, store: NodeStore, audit: AuditLog, clock: Callable[[], dt.datetime] = utcnow) -> None:
        self.store = store
        self.audit = audit
        self.clock = clock

    # --- checks ---
    def _role_permissions(self, session: Session, role: str) -> frozenset[Permission]:
        names = session.scalars(select(RolePermission.permission).where(RolePermission.role_name == role))
        return frozenset(Permission(n) for n in names if n in Permission._value2member_map_)

    def _user(self, session: Session, username: str) -> User:
        user = session.scalar(select(User).where(User.username == username.strip().lower()))
        if user is None:
            raise AccountError(f"There is no account named {username!r}.")
        return user

    @staticmethod
    def _user_by_id(session: Session, user_id: int, username: str) -> User:
        """The account read by ``_target`` earlier; it may have been deleted since (another admin, same node)."""
        user = session.get(User, user_id)
        if user is None:
            raise AccountError(f"There is no account named {username!r}.")
        return user

    def require(self, actor: UserSession, permission: Permission, target: str = "") -> None:
        """Raise ``PermissionDenied`` (and audit the refusal) unless ``actor``'s current role grants ``permission``.

        The account is re-read, so a role change or a disabled account takes effect at once, not at next sign-in.
        """
        with self.store.session() as session:
            user = session.get(User, actor.user_id)
            allowed = (user is not None and not user.disabled
                       and permission in self._role_permissions(session, user.role_name))
        if not allowed:
            self.audit.append(actor.username, str(permission), target, DENIED)
            raise PermissionDenied(PERMISSION_ACTIONS[permission])

    def require_any(self, actor: UserSession, permissions: Iterable[Permission], target: str = "") -> None:
        """Like ``require``, but any one of ``permissions`` suffices; a refusal is audited under the first one."""
        wanted = list(permissions)
        with self.store.session() as session:
            user = session.get(User, actor.user_id)
            allowed = (user is not None and not user.disabled
                       and bool(set(wanted) & self._role_permissions(session, user.role_name)))
        if not allowed:
            self.audit.append(actor.username, str(wanted[0]), target, DENIED)
            raise PermissionDenied(" or ".join(PERMISSION_ACTIONS[p] for p in wanted))

    def require_signed_in(self, actor: UserSession) -> None:
        """Refuse a session whose account was deleted or disabled since sign-in (read-only views need no right)."""
        with self.store.session() as session:
            user = session.get(User, actor.user_id)
            if user is None or user.disabled:
                raise AccountDisabled()

    def _require_owner(self, actor: UserSession, what: str, target: str = "") -> None:
        with self.store.session() as session:
            user = session.get(User, actor.user_id)
            ok = user is not None and not user.disabled and user.role_name == OWNER
        if not ok:
            self.audit.append(actor.username, what, target, DENIED)
            raise PermissionDenied(f"{what.replace('_', ' ')} (only an Owner may)")

    def _check_password(self, password: str, username: str, display_name: str, current: str | None = None) -> None:
        problems = passwords.password_problems(password, username, display_name, current)
        if problems:
            raise PasswordRejected(problems)

    def _session_for(self, session: Session, user: User) -> UserSession:
        return UserSession(user.id, user.username, user.display_name, user.role_name,
                           self._role_permissions(session, user.role_name), user.must_change_password, self.clock())

    # --- first start ---
    def has_owner(self) -> bool:
        with self.store.session() as session:
            return bool(session.scalar(select(func.count()).select_from(User).where(User.role_name == OWNER)))

    def create_owner(self, username: str, display_name: str, password: str) -> None:
        """First start only: create the Owner account. Refused once any Owner exists."""
        username = self._valid_username(username)
        display_name = display_name.strip() or username
        self._check_password(password, username, display_name)
        with self.store.session() as session:
            if session.scalar(select(func.count()).select_from(User).where(User.role_name == OWNER)):
                raise SetupError("This node already has an Owner; sign in as an administrator to add accounts.")
            self._insert(session, username, display_name, password, OWNER, must_change=False)
        self.audit.append(username, "owner_created", username)

    # --- sign-in ---
    def authenticate(self, username: str, password: str) -> UserSession:
        """Sign in. Raises ``AuthenticationFailed``, ``AccountLocked`` or ``AccountDisabled``; every outcome audited."""
        name = username.strip().lower()
        now = self.clock()
        outcome: Exception | None = None
        result: UserSession | None = None
        locked_now = False
        with self.store.session() as session:
            user = session.scalar(select(User).where(User.username == name))
            known = user is not None
            if user is None:
                passwords.burn_verification_time(password)
                outcome = AuthenticationFailed()
            elif user.locked_until is not None and user.locked_until > now:
                outcome = AccountLocked(user.locked_until)
            elif not passwords.verify_password(user.password_hash, password):
                user.failed_logins += 1
                if user.failed_logins >= MAX_FAILED_LOGINS:
                    user.locked_until, user.failed_logins, locked_now = now + LOCKOUT, 0, True
                    outcome = AccountLocked(user.locked_until)
                else:
                    outcome = AuthenticationFailed()
            elif user.disabled:
                outcome = AccountDisabled()
            else:
                if passwords.needs_rehash(user.password_hash):
                    user.password_hash = passwords.hash_password(password)
                user.failed_logins, user.locked_until, user.last_login = 0, None, now
                result = self._session_for(session, user)
        # A name that matches no account is not recorded: people type their password into the name field.
        target = name[:64] if known else "(unknown account)"
        if locked_now:
            self.audit.append("", "login_failed", target, FAILED, {"reason": "wrong password"})
            self.audit.append("", "account_locked", target, OK, {"minutes": int(LOCKOUT.total_seconds() // 60)})
        elif outcome is not None:
            reason = {AccountLocked: "locked", AccountDisabled: "disabled"}.get(type(outcome), "wrong name or password")
            self.audit.append("", "login_failed", target, FAILED, {"reason": reason})
        if outcome is not None:
            raise outcome
        assert result is not None
        self.audit.append(result.username, "login", result.username)
        return result

    def refresh(self, actor: UserSession) -> UserSession:
        """A new session object with the account's current role, permissions and must-change flag."""
        with self.store.session() as session:
            user = session.get(User, actor.user_id)
            if user is None or user.disabled:
                raise AccountDisabled()
            fresh = self._session_for(session, user)
        return UserSession(fresh.user_id, fresh.username, fresh.display_name, fresh.role, fresh.permissions,
                           fresh.must_change_password, actor.started)

    def change_password(self, actor: UserSession, current: str, new: str) -> UserSession:
        """Change one's own password (needs the current one); clears must-change. Returns the refreshed session."""
        with self.store.session() as session:
            user = session.get(User, actor.user_id)
            if user is None or not passwords.verify_password(user.password_hash, current):
                failed = True
            else:
                failed = False
                self._check_password(new, user.username, user.display_name, current)
                user.password_hash = passwords.hash_password(new)
                user.must_change_password, user.password_changed = False, self.clock()
        if failed:
            self.audit.append(actor.username, "password_changed", actor.username, FAILED,
                              {"reason": "wrong current password"})
            raise AuthenticationFailed("The current password is wrong.")
        self.audit.append(actor.username, "password_changed", actor.username)
        return self.refresh(actor)

    # --- administration (manage_accounts) ---
    def _valid_username(self, username: str) -> str:
        name = username.strip().lower()
        if not USERNAME_PATTERN.match(name):
            raise AccountError(f"User names must be {USERNAME_RULE}.")
        return name

    def _insert(self, session: Session, username: str, display_name: str, password: str, role: str,
                must_change: bool) -> None:
        if session.get(Role, role) is None:
            raise AccountError(f"There is no role named {role!r}.")
        if session.scalar(select(User).where(User.username == username)) is not None:
            raise AccountError(f"The user name {username!r} is already taken.")
        now = self.clock()
        session.add(User(username=username, display_name=display_name, password_hash=passwords.hash_password(password),
                         role_name=role, disabled=False, must_change_password=must_change, failed_logins=0,
                         locked_until=None, created=now, password_changed=now, last_login=None))

    def list_accounts(self, actor: UserSession) -> list[AccountView]:
        self.require(actor, Permission.MANAGE_ACCOUNTS)
        with self.store.session() as session:
            return [_view(u) for u in session.scalars(select(User).order_by(User.username))]

    def create_account(self, actor: UserSession, username: str, display_name: str, role: str, password: str) -> None:
        """A new account whose holder must change the initial password at first sign-in."""
        self.require(actor, Permission.MANAGE_ACCOUNTS, username)
        if role == OWNER:
            self._require_owner(actor, "create_owner_account", username)
        username = self._valid_username(username)
        display_name = display_name.strip() or username
        self._check_password(password, username, display_name)
        with self.store.session() as session:
            self._insert(session, username, display_name, password, role, must_change=True)
        self.audit.append(actor.username, "account_created", username, details={"role": role})

    def _target(self, username: str) -> tuple[int, str, str]:
        """(id, user name, role) of an existing account; read before any write so no check nests a transaction."""
        with self.store.session() as session:
            user = self._user(session, username)
            return user.id, user.username, user.role_name

    def _is_last_owner(self, session: Session, user: User) -> bool:
        if user.role_name != OWNER or user.disabled:
            return False
        enabled_owners = select(func.count()).select_from(User).where(User.role_name == OWNER, User.disabled.is_(False))
        return (session.scalar(enabled_owners) or 0) <= 1

    def set_disabled(self, actor: UserSession, username: str, disabled: bool) -> None:
        action = "account_disabled" if disabled else "account_enabled"
        self.require(actor, Permission.MANAGE_ACCOUNTS, username)
        user_id, name, role = self._target(username)
        if role == OWNER:
            self._require_owner(actor, action, name)
        if disabled and user_id == actor.user_id:
            raise AccountError("You cannot disable your own account.")
        try:
            with self.store.session() as session:
                user = self._user_by_id(session, user_id, name)
                if disabled and self._is_last_owner(session, user):
                    raise LastOwnerError()
                user.disabled = disabled
        except LastOwnerError:
            self.audit.append(actor.username, action, name, DENIED, {"reason": "last owner"})
            raise
        self.audit.append(actor.username, action, name)

    def set_role(self, actor: UserSession, username: str, role: str) -> None:
        self.require(actor, Permission.MANAGE_ACCOUNTS, username)
        user_id, name, previous = self._target(username)
        if role not in self.roles():
            raise AccountError(f"There is no role named {role!r}.")
        if OWNER in (role, previous) and role != previous:
            self._require_owner(actor, "role_changed", name)
        try:
            with self.store.session() as session:
                user = self._user_by_id(session, user_id, name)
                if role != OWNER and self._is_last_owner(session, user):
                    raise LastOwnerError()
                user.role_name = role
        except LastOwnerError:
            self.audit.append(actor.username, "role_changed", name, DENIED, {"reason": "last owner"})
            raise
        self.audit.append(actor.username, "role_changed", name, details={"from": previous, "to": role})

    def reset_password(self, actor: UserSession, username: str, new_password: str) -> None:
        """Set a temporary password the holder must change at next sign-in; also lifts a lockout."""
        self.require(actor, Permission.MANAGE_ACCOUNTS, username)
        user_id, name, role = self._target(username)
        if role == OWNER:
            self._require_owner(actor, "password_reset", name)
        with self.store.session() as session:
            user = self._user_by_id(session, user_id, name)
            self._check_password(new_password, user.username, user.display_name)
            user.password_hash = passwords.hash_password(new_password)
            user.must_change_password, user.failed_logins, user.locked_until = True, 0, None
            user.password_changed = self.clock()
        self.audit.append(actor.username, "password_reset", name)

    def unlock(self, actor: UserSession, username: str) -> None:
        self.require(actor, Permission.MANAGE_ACCOUNTS, username)
        with self.store.session() as session:
            user = self._user(session, username)
            user.failed_logins, user.locked_until, name = 0, None, user.username
        self.audit.append(actor.username, "account_unlocked", name)

    # --- roles ---
    def roles(self) -> dict[str, frozenset[Permission]]:
        """Every role (in display order) with its permissions. Role names and rights are not secret."""
        with self.store.session() as session:
            names = list(session.scalars(select(Role.name).order_by(Role.position, Role.name)))
            return {name: self._role_permissions(session, name) for name in names}

    def set_role_permissions(self, actor: UserSession, role: str, permissions: Iterable[Permission]) -> None:
        """Owner only. The Owner role itself always keeps every permission."""
        self._require_owner(actor, "role_permissions_changed", role)
        wanted = frozenset(Permission(p) for p in permissions)
        if role == OWNER and wanted != frozenset(Permission):
            raise AccountError("The Owner role always keeps every permission.")
        with self.store.session() as session:
            if session.get(Role, role) is None:
                raise AccountError(f"There is no role named {role!r}.")
            before = self._role_permissions(session, role)
            for row in session.scalars(select(RolePermission).where(RolePermission.role_name == role)):
                session.delete(row)
            session.flush()
            session.add_all(RolePermission(role_name=role, permission=str(p)) for p in sorted(wanted))
        details = {"added": ",".join(sorted(wanted - before)), "removed": ",".join(sorted(before - wanted))}
        self.audit.append(actor.username, "role_permissions_changed", role, details=details)

