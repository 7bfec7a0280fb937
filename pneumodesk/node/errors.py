"""Typed errors of the hospital node, each with a message an admin or clinician can act on (never a secret)."""

from __future__ import annotations

import datetime as dt

from pneumodesk.errors import PneumoDeskError


class NodeError(PneumoDeskError):
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


class RegisteredDatasetError(NodeError):
    """A dataset cannot be registered, found or removed; the message says why in plain words."""


class PolicyError(NodeError):
    """A node policy that cannot be saved (e.g. a minimum above its maximum); ``problems`` lists each one."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("The policy was not saved: " + "; ".join(problems) + ".")


class PlanOutsidePolicy(NodeError):
    """A training plan breaks this node's policy; ``reasons`` lists every rule it breaks, in plain words."""

    def __init__(self, reasons: list[str]) -> None:
        self.reasons = reasons
        super().__init__("This training plan is outside the node's policy: " + "; ".join(reasons) + ".")


class PrivacyBudgetExceeded(NodeError):
    """Training would push the privacy spending (ε) of a dataset's images past the cap the admin set."""

    def __init__(self, dataset_id: int, spent: float, requested: float, cap: float, *, reserved: float = 0.0) -> None:
        self.dataset_id, self.spent, self.requested, self.cap = dataset_id, spent, requested, cap
        self.reserved = reserved
        held = f" and other approved plans may still spend ε = {reserved:.2f}" if reserved > 0 else ""
        super().__init__(
            f"Dataset {dataset_id} has already spent ε = {spent:.2f}{held} of its privacy budget of ε = {cap:.2f} "
            f"(on its most-used image, counting every dataset that holds the same images); "
            f"another ε = {requested:.2f} would exceed it, so this training is not allowed."
        )


class ApprovalError(NodeError):
    """An approval that cannot be given or withdrawn (unknown plan, already approved, …)."""


class RecognisedPeerError(NodeError):
    """A recognised-peer fingerprint or name that cannot be used, or a peer that is not recognised."""


class MembershipError(NodeError):
    """A federation membership change that cannot be made."""


class ModelRegistryError(NodeError):
    """A local model that cannot be added, accepted, rejected or restored."""


class NodeStoreError(NodeError):
    """The node store's SQLite file could not be used. ``path`` is the file; the message says what happened, what
    was (not) saved and what an administrator can do. PneumoDesk never rewrites or "repairs" the file on its own.
    """

    def __init__(self, path: object, message: str) -> None:
        self.path = path
        super().__init__(message)


class NodeStoreDamaged(NodeStoreError):
    """The file is not a readable SQLite database any more (random bytes, truncated, a failed integrity check)."""

    def __init__(self, path: object, detail: str) -> None:
        self.detail = detail
        super().__init__(path, f"The node store at {path} is damaged ({detail}). PneumoDesk has not changed it: "
                               "restore it from a backup, or move it aside to start a new, empty node store.")


class NodeStoreNotRecognised(NodeStoreError):
    """A valid SQLite file that is not a PneumoDesk node store (another program's tables, or ours missing)."""

    def __init__(self, path: object, detail: str) -> None:
        self.detail = detail
        super().__init__(path, f"The file at {path} is not a PneumoDesk node store ({detail}). PneumoDesk has not "
                               "changed it: move it elsewhere, or choose another app data folder with --home.")


class NodeStoreTooNew(NodeStoreError):
    """The store's schema revision is unknown to this build: written by a newer PneumoDesk (or another program)."""

    def __init__(self, path: object, revision: str, known_head: str) -> None:
        self.revision, self.known_head = revision, known_head
        super().__init__(path, f"The node store at {path} was written by a newer PneumoDesk (schema revision "
                               f"{revision}; this version knows up to {known_head}). PneumoDesk has not changed "
                               "it: install the newer version, or restore a backup made by this one.")


class NodeStoreBusy(NodeStoreError):
    """Another process held the store's write lock for longer than the busy timeout."""

    def __init__(self, path: object, waited_s: float) -> None:
        self.waited_s = waited_s
        super().__init__(path, f"The node store at {path} is locked by another program (another PneumoDesk window "
                               f"or command) and stayed locked for {waited_s:g} s, so nothing from this action "
                               "was saved. Close the other program or wait for it to finish, then try again.")


class NodeStoreReadOnly(NodeStoreError):
    """The file or its folder cannot be written. PneumoDesk does not run read-only: every sign-in and action is
    recorded in the audit log, so a store it cannot write is refused with this error instead."""

    def __init__(self, path: object, detail: str) -> None:
        self.detail = detail
        super().__init__(path, f"The node store at {path} is read-only ({detail}), so nothing from this action was "
                               "saved. PneumoDesk records every sign-in and action in it: ask an administrator "
                               "to give this user write access to the file and its folder.")


class NodeStoreFull(NodeStoreError):
    """A write failed because the disk (or the store's size limit) is full; the transaction was rolled back."""

    def __init__(self, path: object) -> None:
        super().__init__(path, f"The disk holding the node store at {path} is full, so nothing from this action "
                               "was saved; everything saved before is intact. Free some disk space, then try again.")


class NodeStoreUnavailable(NodeStoreError):
    """The file could not be opened, read or written for another reason (a disk error, a missing folder)."""

    def __init__(self, path: object, detail: str) -> None:
        self.detail = detail
        super().__init__(path, f"The node store at {path} cannot be opened or written ({detail}), so nothing from "
                               "this action was saved. Check that its disk is connected and the file and its "
                               "folder are accessible.")
