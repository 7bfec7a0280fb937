"""The hospital node's state: accounts, roles and permissions, and the tamper-evident audit log (SQLite).

Every permission check lives here, so the CLI and the GUI enforce the same rules. Nothing here imports Qt.
"""

from .accounts import AccountService, AccountView
from .audit import AuditLog, AuditRecord, ChainReport, verify_chain
from .errors import (
    AccountDisabled,
    AccountError,
    AccountLocked,
    AuthenticationFailed,
    LastOwnerError,
    NodeError,
    PasswordRejected,
    PermissionDenied,
    SetupError,
)
from .permissions import DEFAULT_ROLES, OWNER, Permission
from .service import NodeService
from .session import UserSession
from .store import NodeStore, resolve_home

__all__ = [
    "DEFAULT_ROLES", "OWNER", "AccountDisabled", "AccountError", "AccountLocked", "AccountService", "AccountView",
    "AuditLog", "AuditRecord", "AuthenticationFailed", "ChainReport", "LastOwnerError", "NodeError", "NodeService",
    "NodeStore", "PasswordRejected", "Permission", "PermissionDenied", "SetupError", "UserSession", "resolve_home",
    "verify_chain",
]
