"""Password hashing (argon2id via argon2-cffi) and the password rules.

Invariants: only argon2 hashes are stored (DESIGN invariant 7); a hash made with older parameters is replaced at the
next successful sign-in; passwords and hashes are never logged, printed or written to the audit log.
"""

from __future__ import annotations

import argon2
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

MIN_LENGTH = 12
MAX_LENGTH = 256

#: The rules in words (shown next to every password field and enforced by ``password_problems``).
PASSWORD_RULES: tuple[str, ...] = (
    f"at least {MIN_LENGTH} and at most {MAX_LENGTH} characters",
    "not containing the user name or the display name",
    "at least 5 different characters",
    "not a well-known password",
    "different from the current password",
)

_COMMON = frozenset({
    "password1234", "password12345", "passw0rd1234", "123456789012", "1234567890123", "qwertyuiop12",
    "qwertyuiopas", "letmein12345", "welcome12345", "administrator", "changeme1234", "iloveyou1234",
    "pneumodesk123", "pneumodesk1234", "hospital1234", "abcdefghijkl", "abc123456789",
})

# argon2-cffi's defaults (RFC 9106 low-memory profile: argon2id, t=3, m=64 MiB, p=4).
_hasher = argon2.PasswordHasher()
_dummy_hash: str | None = None


def override_hasher_for_tests(hasher: argon2.PasswordHasher) -> argon2.PasswordHasher:
    """TEST HOOK ONLY: swap the hasher (e.g. for cheap parameters) and return the previous one.

    Production code never calls this; ``tests/conftest.py`` uses it so that the suite does not spend seconds per
    sign-in. Hashes made with other parameters still verify, and are rehashed at the next sign-in.
    """
    global _hasher, _dummy_hash
    previous, _hasher, _dummy_hash = _hasher, hasher, None
    return previous


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(stored_hash: str, password: str) -> bool:
    """True when ``password`` matches; a malformed stored hash counts as a mismatch, never as a crash."""
    try:
        return _hasher.verify(stored_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def burn_verification_time(password: str) -> None:
    """Spend what a real verification costs, so an unknown user name answers as slowly as a wrong password."""
    global _dummy_hash
    if _dummy_hash is None:
        _dummy_hash = _hasher.hash("not a real account's password")
    verify_password(_dummy_hash, password)


def needs_rehash(stored_hash: str) -> bool:
    try:
        return _hasher.check_needs_rehash(stored_hash)
    except InvalidHashError:
        return True


def password_problems(password: str, username: str, display_name: str = "", current: str | None = None) -> list[str]:
    """The rules ``password`` breaks (empty when it is acceptable)."""
    problems: list[str] = []
    if not MIN_LENGTH <= len(password) <= MAX_LENGTH:
        problems.append(PASSWORD_RULES[0])
    folded = password.casefold()
    names = [n.casefold() for n in (username, display_name, *display_name.split()) if len(n) >= 3]
    if any(name in folded for name in names):
        problems.append(PASSWORD_RULES[1])
    if len(set(password)) < 5:
        problems.append(PASSWORD_RULES[2])
    if folded in _COMMON:
        problems.append(PASSWORD_RULES[3])
    if current is not None and password == current:
        problems.append(PASSWORD_RULES[4])
    return problems
