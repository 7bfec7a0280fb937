"""Typed errors of the hospital node, each with a message an admin or clinician can act on (never a secret)."""

from __future__ import annotations

import datetime as dt


class NodeError(Exception):
    """Base of every error the node's services raise; ``str(error)`` is a plain sentence for the user."""


class AuthenticationFailed(NodeError):
    """Wrong user name or password. The message never says which of the two was wrong."""

    def __init__(self, message: str = "Wrong user name or password.") -> None:
        super().__init__(message)


class AccountLocked(NodeError):
    """Too many failed sign-ins: the account stays locked until ``until`` (UTC) or an administrator unlocks it."""

    def __init__(self, until: dt.datetime) -> None:
        self.until = until
        local = until.astimezone().strftime("%H:%M")
        super().__init__(
            f"This account is locked after too many failed sign-ins. Try again after {local}, "
            "or ask an administrator to unlock it."
        )


class AccountDisabled(NodeError):
    def __init__(self) -> None:
        super().__init__("This account is disabled. Ask an administrator to enable it.")


class PermissionDenied(NodeError):
    """The signed-in account's role does not allow the action."""

    def __init__(self, action: str) -> None:
        super().__init__(f"Your role does not allow you to {action}. Ask an administrator if you need it.")


class PasswordRejected(NodeError):
    """A new password breaks one or more of the rules in ``passwords.PASSWORD_RULES``."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("The password was not accepted: " + "; ".join(problems) + ".")


class AccountError(NodeError):
    """An account change that cannot be made (unknown user, name taken, unknown role, …)."""


class LastOwnerError(AccountError):
    def __init__(self) -> None:
        super().__init__("This is the last Owner account: it cannot be disabled or given another role.")


class SetupError(NodeError):
    """First-start set-up refused (e.g. an Owner already exists)."""
