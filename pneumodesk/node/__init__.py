"""The hospital node's state: accounts, roles and permissions, datasets, policy, approvals, the privacy ledger,
federation membership, the egress log, local models and the tamper-evident audit log (SQLite).

Every permission check lives here, so the CLI and the GUI enforce the same rules. Nothing here imports Qt.

Names are loaded lazily (PEP 562), so importing a small pure module such as ``pneumodesk.node.permissions`` does
not pull in SQLAlchemy, Alembic or argon2.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pneumodesk.lazy_exports import lazy_exports

if TYPE_CHECKING:
    from .accounts import AccountService, AccountView
    from .approvals import Approval, ApprovalService
    from .audit import AuditLog, AuditRecord, ChainReport, verify_chain
    from .datasets import DatasetInfo, DatasetService
    from .egress import EgressLog, EgressRecord
    from .errors import (
        AccountDisabled,
        AccountError,
        AccountLocked,
        ApprovalError,
        AuthenticationFailed,
        LastOwnerError,
        MembershipError,
        ModelRegistryError,
        NodeError,
        NodeStoreBusy,
        NodeStoreDamaged,
        NodeStoreError,
        NodeStoreFull,
        NodeStoreNotRecognised,
        NodeStoreReadOnly,
        NodeStoreTooNew,
        NodeStoreUnavailable,
        PasswordRejected,
        PermissionDenied,
        PlanOutsidePolicy,
        PolicyError,
        PrivacyBudgetExceeded,
        RegisteredDatasetError,
        SetupError,
    )
    from .ledger import LedgerEntry, PrivacyLedger
    from .membership import FederationMembership, Membership
    from .model_registry import LocalModel, LocalModelRegistry
    from .permissions import DEFAULT_ROLES, OWNER, Permission
    from .policy import NodePolicy, PolicyService, plan_violations
    from .service import NodeService
    from .session import UserSession
    from .store import NodeStore, resolve_home

_EXPORTS: dict[str, str] = {
    **dict.fromkeys(("AccountService", "AccountView"), "accounts"),
    **dict.fromkeys(("Approval", "ApprovalService"), "approvals"),
    **dict.fromkeys(("AuditLog", "AuditRecord", "ChainReport", "verify_chain"), "audit"),
    **dict.fromkeys(("DatasetInfo", "DatasetService"), "datasets"),
    **dict.fromkeys(("EgressLog", "EgressRecord"), "egress"),
    **dict.fromkeys((
        "AccountDisabled", "AccountError", "AccountLocked", "ApprovalError", "AuthenticationFailed",
        "RegisteredDatasetError",
        "LastOwnerError", "MembershipError", "ModelRegistryError", "NodeError", "PasswordRejected",
        "PermissionDenied", "PlanOutsidePolicy", "PolicyError", "PrivacyBudgetExceeded", "SetupError",
        "NodeStoreBusy", "NodeStoreDamaged", "NodeStoreError", "NodeStoreFull",
        "NodeStoreNotRecognised", "NodeStoreReadOnly", "NodeStoreTooNew", "NodeStoreUnavailable",
    ), "errors"),
    **dict.fromkeys(("LedgerEntry", "PrivacyLedger"), "ledger"),
    **dict.fromkeys(("FederationMembership", "Membership"), "membership"),
    **dict.fromkeys(("LocalModel", "LocalModelRegistry"), "model_registry"),
    **dict.fromkeys(("DEFAULT_ROLES", "OWNER", "Permission"), "permissions"),
    **dict.fromkeys(("NodePolicy", "PolicyService", "plan_violations"), "policy"),
    "NodeService": "service",
    "UserSession": "session",
    **dict.fromkeys(("NodeStore", "resolve_home"), "store"),
}

__all__ = [
    "DEFAULT_ROLES",
    "OWNER",
    "AccountDisabled",
    "AccountError",
    "AccountLocked",
    "AccountService",
    "AccountView",
    "Approval",
    "ApprovalError",
    "ApprovalService",
    "AuditLog",
    "AuditRecord",
    "AuthenticationFailed",
    "ChainReport",
    "DatasetInfo",
    "DatasetService",
    "EgressLog",
    "EgressRecord",
    "FederationMembership",
    "LastOwnerError",
    "LedgerEntry",
    "LocalModel",
    "LocalModelRegistry",
    "Membership",
    "MembershipError",
    "ModelRegistryError",
    "NodeError",
    "NodePolicy",
    "NodeService",
    "NodeStore",
    "NodeStoreBusy",
    "NodeStoreDamaged",
    "NodeStoreError",
    "NodeStoreFull",
    "NodeStoreNotRecognised",
    "NodeStoreReadOnly",
    "NodeStoreTooNew",
    "NodeStoreUnavailable",
    "PasswordRejected",
    "Permission",
    "PermissionDenied",
    "PlanOutsidePolicy",
    "PolicyError",
    "PolicyService",
    "PrivacyBudgetExceeded",
    "PrivacyLedger",
    "RegisteredDatasetError",
    "SetupError",
    "UserSession",
    "plan_violations",
    "resolve_home",
    "verify_chain",
]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
