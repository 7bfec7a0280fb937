"""The whole role × permission matrix, enforced by the service layer; role edits take effect at once."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from pneumodesk.node import DEFAULT_ROLES, NodeService, Permission, PermissionDenied, UserSession
from pneumodesk.node.accounts import AccountError
from tests.node_builders import OWNER

PASSWORD = "sunflower meadow 88"


@pytest.fixture
def node(tmp_path: Path):
    service = NodeService.open(tmp_path / "home")
    service.accounts.create_owner(*OWNER)
    yield service
    service.close()


def owner_session(node: NodeService) -> UserSession:
    return node.accounts.authenticate(OWNER[0], OWNER[2])


def user_with_role(node: NodeService, role: str) -> UserSession:
    name = "user." + role.lower().replace(" ", "")[:20]
    node.accounts.create_account(owner_session(node), name, role, role, PASSWORD)
    return node.accounts.authenticate(name, PASSWORD)


def operation(node: NodeService, permission: Permission, tmp_path: Path) -> Callable[[UserSession], object]:
    """A real service call needing ``permission`` (a bare check where no service for it exists yet)."""
    target = tmp_path / "out.csv"
    calls: dict[Permission, Callable[[UserSession], object]] = {
        Permission.PREDICT: lambda s: node.clinical.authorize_prediction(s, 3),
        Permission.REVIEW: lambda s: node.clinical.record_verdict(s, "agree", "v1", lambda: None),
        Permission.EXPORT_REPORTS: lambda s: node.clinical.export(s, "worklist_csv", 1, lambda: target),
        Permission.MANAGE_ACCOUNTS: lambda s: node.accounts.list_accounts(s),
        Permission.VIEW_AUDIT: lambda s: node.read_audit(s),
    }
    return calls.get(permission, lambda s: node.accounts.require(s, permission))


MATRIX = [(role, permission) for role in DEFAULT_ROLES for permission in Permission]


@pytest.mark.parametrize(("role", "permission"), MATRIX, ids=[f"{r}-{p.value}" for r, p in MATRIX])
def test_each_role_may_do_exactly_what_its_permissions_say(node, tmp_path, role, permission):
    session = owner_session(node) if role == "Owner" else user_with_role(node, role)
    call = operation(node, permission, tmp_path)

    if permission in DEFAULT_ROLES[role]:
        call(session)
    else:
        with pytest.raises(PermissionDenied, match="Your role does not allow you to"):
            call(session)
        denied = node.audit.read(user=session.username, action=permission.value)
        assert denied and denied[0].outcome == "denied"


def test_the_owner_edits_a_role_and_it_applies_without_signing_in_again(node, tmp_path):
    clinician = user_with_role(node, "Clinician")
    export = operation(node, Permission.EXPORT_REPORTS, tmp_path)
    export(clinician)

    node.accounts.set_role_permissions(owner_session(node), "Clinician", {Permission.PREDICT, Permission.REVIEW})

    with pytest.raises(PermissionDenied):
        export(clinician)
    assert node.accounts.roles()["Clinician"] == {Permission.PREDICT, Permission.REVIEW}
    change = node.audit.read(action="role_permissions_changed")[0]
    assert change.details == {"added": "", "removed": "export_reports"} and change.target == "Clinician"


def test_only_an_owner_may_edit_roles_and_the_owner_role_keeps_everything(node):
    admin = user_with_role(node, "Administrator")

    with pytest.raises(PermissionDenied):
        node.accounts.set_role_permissions(admin, "Clinician", set(Permission))
    with pytest.raises(AccountError, match="Owner role always keeps every permission"):
        node.accounts.set_role_permissions(owner_session(node), "Owner", {Permission.PREDICT})
    assert node.accounts.roles()["Owner"] == frozenset(Permission)


def test_an_administrator_cannot_grant_or_touch_the_owner_role(node):
    admin = user_with_role(node, "Administrator")
    node.accounts.create_account(admin, "new.person", "New Person", "Clinician", PASSWORD)

    for attempt in (
        lambda: node.accounts.set_role(admin, "new.person", "Owner"),
        lambda: node.accounts.create_account(admin, "sneaky.one", "Sneaky", "Owner", PASSWORD),
        lambda: node.accounts.set_disabled(admin, OWNER[0], True),
        lambda: node.accounts.reset_password(admin, OWNER[0], PASSWORD),
        lambda: node.accounts.set_role(admin, OWNER[0], "Clinician"),
    ):
        with pytest.raises(PermissionDenied):
            attempt()
    roles = {a.username: a.role for a in node.accounts.list_accounts(owner_session(node))}
    assert roles == {OWNER[0]: "Owner", "new.person": "Clinician", "user.administrator": "Administrator"}


def test_a_disabled_account_loses_every_permission_at_once(node, tmp_path):
    clinician = user_with_role(node, "Clinician")
    node.accounts.set_disabled(owner_session(node), clinician.username, True)

    with pytest.raises(PermissionDenied):
        node.clinical.authorize_prediction(clinician, 1)
