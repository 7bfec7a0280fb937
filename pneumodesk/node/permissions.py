"""What a role may do: the ``Permission`` names and the default roles a new node store starts with."""

from __future__ import annotations

from enum import StrEnum


class Permission(StrEnum):
    PREDICT = "predict"
    REVIEW = "review"  # record verdicts (agree / disagree with the model)
    EXPORT_REPORTS = "export_reports"
    MANAGE_DATASETS = "manage_datasets"
    APPROVE_TRAINING = "approve_training"
    MANAGE_FEDERATION = "manage_federation"
    MANAGE_ACCOUNTS = "manage_accounts"
    VIEW_AUDIT = "view_audit"


#: What each permission lets a person do, in words used by error messages and the role editor.
PERMISSION_ACTIONS: dict[Permission, str] = {
    Permission.PREDICT: "run predictions",
    Permission.REVIEW: "record verdicts",
    Permission.EXPORT_REPORTS: "export reports",
    Permission.MANAGE_DATASETS: "manage datasets",
    Permission.APPROVE_TRAINING: "approve training",
    Permission.MANAGE_FEDERATION: "manage the federation",
    Permission.MANAGE_ACCOUNTS: "manage accounts",
    Permission.VIEW_AUDIT: "read the audit log",
}

OWNER = "Owner"
CLINICIAN = "Clinician"
RESEARCHER = "Researcher"
COMPLIANCE_OFFICER = "Compliance officer"
ADMINISTRATOR = "Administrator"

#: The roles of a new store. The Owner role always holds every permission (the role editor cannot change it),
#: so the node can never end up with nobody able to manage accounts.
DEFAULT_ROLES: dict[str, frozenset[Permission]] = {
    CLINICIAN: frozenset({Permission.PREDICT, Permission.REVIEW, Permission.EXPORT_REPORTS}),
    RESEARCHER: frozenset({Permission.PREDICT, Permission.MANAGE_DATASETS}),
    COMPLIANCE_OFFICER: frozenset({Permission.VIEW_AUDIT}),
    ADMINISTRATOR: frozenset({
        Permission.MANAGE_ACCOUNTS, Permission.VIEW_AUDIT, Permission.MANAGE_DATASETS,
        Permission.APPROVE_TRAINING, Permission.MANAGE_FEDERATION,
    }),
    OWNER: frozenset(Permission),
}

ROLE_ORDER: tuple[str, ...] = (CLINICIAN, RESEARCHER, COMPLIANCE_OFFICER, ADMINISTRATOR, OWNER)
