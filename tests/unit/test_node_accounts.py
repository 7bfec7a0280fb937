"""Sign-in, lockout and unlock, password rules and hashing, password reset, last-Owner protection."""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path

import argon2
import pytest

from pneumodesk.node import (
    AccountDisabled,
    AccountError,
    AccountLocked,
    AuthenticationFailed,
    LastOwnerError,
    NodeService,
    PasswordRejected,
    SetupError,
    passwords,
)
from pneumodesk.node.accounts import LOCKOUT, MAX_FAILED_LOGINS
from pneumodesk.node.passwords import password_problems
from tests.node_builders import OWNER

PASSWORD = "sunflower meadow 88"


class Clock:
    def __init__(self) -> None:
        self.now = dt.datetime(2026, 11, 27, 9, 0, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now


@pytest.fixture
def node(tmp_path: Path):
    service = NodeService.open(tmp_path / "home")
    service.accounts.clock = Clock()
    service.accounts.create_owner(*OWNER)
    yield service
    service.close()


def owner(node):
    return node.accounts.authenticate(OWNER[0], OWNER[2])


def add_clinician(node, name: str = "carl.reader") -> None:
    node.accounts.create_account(owner(node), name, "Carl Reader", "Clinician", PASSWORD)


def test_unknown_user_and_wrong_password_get_the_same_answer(node):
    add_clinician(node)
    with pytest.raises(AuthenticationFailed) as unknown:
        node.accounts.authenticate("nobody.here", PASSWORD)
    with pytest.raises(AuthenticationFailed) as wrong:
        node.accounts.authenticate("carl.reader", "wrong password 123")
    assert str(unknown.value) == str(wrong.value) == "Wrong user name or password."
    failures = node.audit.read(action="login_failed")
    assert [e.details["reason"] for e in failures] == ["wrong name or password"] * 2
    assert [e.target for e in failures] == ["carl.reader", "(unknown account)"]  # a mistyped name is not kept


def test_a_password_typed_into_the_user_name_field_never_reaches_the_audit_log(node):
    with pytest.raises(AuthenticationFailed):
        node.accounts.authenticate(PASSWORD, PASSWORD)
    assert PASSWORD not in repr(node.audit.read())


def test_lockout_after_repeated_failures_then_time_based_unlock(node):
    add_clinician(node)
    clock = node.accounts.clock
    for _ in range(MAX_FAILED_LOGINS - 1):
        with pytest.raises(AuthenticationFailed):
            node.accounts.authenticate("carl.reader", "wrong password 123")

    with pytest.raises(AccountLocked) as locked:
        node.accounts.authenticate("carl.reader", "wrong password 123")
    with pytest.raises(AccountLocked):  # even the right password waits for the lock to expire
        node.accounts.authenticate("carl.reader", PASSWORD)
    clock.now += LOCKOUT + dt.timedelta(seconds=1)
    session = node.accounts.authenticate("carl.reader", PASSWORD)

    assert locked.value.until == dt.datetime(2026, 11, 27, 9, 0, tzinfo=dt.UTC) + LOCKOUT
    assert "locked" in str(locked.value) and "administrator" in str(locked.value)
    assert session.username == "carl.reader"
    assert [e.action for e in node.audit.read(action="account_locked")] == ["account_locked"]


def test_an_administrator_unlocks_a_locked_account(node):
    add_clinician(node)
    for _ in range(MAX_FAILED_LOGINS):
        with pytest.raises((AuthenticationFailed, AccountLocked)):  # the last failure locks
            node.accounts.authenticate("carl.reader", "wrong password 123")

    node.accounts.unlock(owner(node), "carl.reader")

    assert node.accounts.authenticate("carl.reader", PASSWORD).username == "carl.reader"
    assert node.audit.read(action="account_unlocked")[0].target == "carl.reader"


def test_new_and_reset_passwords_must_be_changed_and_the_old_one_stops_working(node):
    add_clinician(node)
    first = node.accounts.authenticate("carl.reader", PASSWORD)
    assert first.must_change_password

    changed = node.accounts.change_password(first, PASSWORD, "river stone 4471")
    node.accounts.reset_password(owner(node), "carl.reader", "temporary glass 55")
    after_reset = node.accounts.authenticate("carl.reader", "temporary glass 55")

    assert not changed.must_change_password
    assert after_reset.must_change_password
    with pytest.raises(AuthenticationFailed):
        node.accounts.authenticate("carl.reader", "river stone 4471")
    with pytest.raises(AuthenticationFailed, match="current password is wrong"):
        node.accounts.change_password(after_reset, "not it at all", "another river 12")


def test_a_disabled_account_cannot_sign_in_until_enabled(node):
    add_clinician(node)
    node.accounts.set_disabled(owner(node), "carl.reader", True)
    with pytest.raises(AccountDisabled):
        node.accounts.authenticate("carl.reader", PASSWORD)
    node.accounts.set_disabled(owner(node), "carl.reader", False)
    assert node.accounts.authenticate("carl.reader", PASSWORD)


@pytest.mark.parametrize(
    ("password", "rule"),
    [
        ("short pw 1", "at least 12"),
        ("carl.reader and more", "user name"),
        ("Reader 12345678", "display name"),
        ("aaaabbbbaaaa", "5 different"),
        ("password1234", "well-known"),
    ],
)
def test_password_rules(password, rule):
    problems = password_problems(password, "carl.reader", "Carl Reader")
    assert any(rule in p for p in problems), problems


def test_password_rules_accept_a_good_one_and_reject_reusing_the_current(node):
    assert password_problems("sunflower meadow 88", "carl.reader", "Carl Reader") == []
    assert password_problems("sunflower meadow 88", "c", "", current="sunflower meadow 88") == [
        "different from the current password"
    ]
    with pytest.raises(PasswordRejected, match="at least 12"):
        node.accounts.create_account(owner(node), "short.pw", "Short", "Clinician", "tiny")


def test_only_argon2_hashes_are_stored_and_old_parameters_are_rehashed(node, tmp_path):
    add_clinician(node)
    db = tmp_path / "home" / "node.sqlite3"
    stored = dict(sqlite3.connect(db).execute("select username, password_hash from users"))
    previous = passwords.override_hasher_for_tests(argon2.PasswordHasher(time_cost=2, memory_cost=16, parallelism=1))
    try:
        node.accounts.authenticate("carl.reader", PASSWORD)
        rehashed = dict(sqlite3.connect(db).execute("select username, password_hash from users"))
    finally:
        passwords.override_hasher_for_tests(previous)

    assert all(h.startswith("$argon2id$") for h in stored.values())
    assert stored["carl.reader"] != rehashed["carl.reader"] and "t=2" in rehashed["carl.reader"]
    assert rehashed[OWNER[0]] == stored[OWNER[0]]  # not signed in again: untouched
    assert PASSWORD.encode() not in db.read_bytes()


def test_the_last_owner_cannot_be_disabled_or_demoted_but_one_of_two_can(node):
    boss = owner(node)
    node.accounts.create_account(boss, "second.owner", "Second Owner", "Owner", PASSWORD)
    node.accounts.create_account(boss, "ian.admin", "Ian Admin", "Administrator", PASSWORD)
    admin = node.accounts.authenticate("ian.admin", PASSWORD)

    node.accounts.set_role(boss, "second.owner", "Administrator")
    with pytest.raises(LastOwnerError):
        node.accounts.set_role(boss, OWNER[0], "Administrator")
    with pytest.raises(AccountError, match="your own account"):
        node.accounts.set_disabled(boss, OWNER[0], True)
    node.accounts.set_role(boss, "second.owner", "Owner")
    second = node.accounts.authenticate("second.owner", PASSWORD)
    node.accounts.set_disabled(second, OWNER[0], True)
    with pytest.raises(LastOwnerError):
        node.accounts.set_role(second, "second.owner", "Clinician")
    with pytest.raises(Exception):  # noqa: B017 - an admin may not disable an Owner at all
        node.accounts.set_disabled(admin, "second.owner", True)

    roles = {a.username: (a.role, a.disabled) for a in node.accounts.list_accounts(second)}
    assert roles["second.owner"] == ("Owner", False) and roles[OWNER[0]] == ("Owner", True)
    assert [e.outcome for e in node.audit.read(action="role_changed") if e.details.get("reason")] == ["denied"] * 2


def test_create_owner_only_once_and_user_names_are_checked(node):
    with pytest.raises(SetupError):
        node.accounts.create_owner("another.owner", "Another", PASSWORD)
    with pytest.raises(AccountError, match="User names must be"):
        node.accounts.create_account(owner(node), "Bad Name!", "Bad", "Clinician", PASSWORD)
    with pytest.raises(AccountError, match="already taken"):
        node.accounts.create_account(owner(node), OWNER[0], "Dup", "Clinician", PASSWORD)
