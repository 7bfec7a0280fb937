"""The PACS connections of this workstation, in the node store; changing them is an administrator's job, audited.

Invariants: saving or removing a connection needs ``manage_accounts`` (the node's administrators) and is audited
with its name, protocol and address — never the secret, which goes to the OS keyring only; listing needs only a
signed-in account (clinicians pick a connection to search).
"""

from __future__ import annotations

from sqlalchemy import select

from pneumodesk.node.accounts import AccountService
from pneumodesk.node.audit import AuditLog
from pneumodesk.node.models import PacsConnectionRow, utcnow
from pneumodesk.node.permissions import Permission
from pneumodesk.node.session import UserSession
from pneumodesk.node.store import NodeStore

from .credentials import PacsSecrets
from .errors import PacsSettingsError
from .settings import PacsConnection

ADMIN = Permission.MANAGE_ACCOUNTS


class PacsConnections:
    def __init__(self, store: NodeStore, accounts: AccountService, audit: AuditLog, secrets: PacsSecrets) -> None:
        self.store = store
        self.accounts = accounts
        self.audit = audit
        self.secrets = secrets

    def list(self, actor: UserSession) -> list[PacsConnection]:
        self.accounts.require_signed_in(actor)
        with self.store.session() as session:
            rows = session.scalars(select(PacsConnectionRow).order_by(PacsConnectionRow.name)).all()
            return [PacsConnection.from_json(row.name, row.protocol, row.settings) for row in rows]

    def get(self, actor: UserSession, name: str) -> PacsConnection:
        for connection in self.list(actor):
            if connection.name == name:
                return connection
        raise PacsSettingsError(f"There is no PACS connection named {name!r}.")

    def save(self, actor: UserSession, connection: PacsConnection, secret: str | None = None) -> PacsConnection:
        """Create or replace; ``secret`` None keeps the stored one, "" forgets it."""
        self.accounts.require(actor, ADMIN, "pacs_connection")
        connection = connection.validated()
        with self.store.session() as session:
            row = session.get(PacsConnectionRow, connection.name) or PacsConnectionRow(name=connection.name)
            created = row.protocol is None
            row.protocol, row.settings = str(connection.protocol), connection.settings_json()
            row.changed_at, row.changed_by = utcnow(), actor.username
            session.add(row)
        if secret == "":
            self.secrets.delete(connection.name)
        elif secret is not None:
            self.secrets.set(connection.name, secret)
        self.audit.append(actor.username, "pacs_connection_saved", connection.name, details={
            "protocol": str(connection.protocol), "address": connection.address[:200], "created": created,
            "secret_changed": secret is not None})
        return connection

    def remove(self, actor: UserSession, name: str) -> None:
        self.accounts.require(actor, ADMIN, "pacs_connection")
        with self.store.session() as session:
            row = session.get(PacsConnectionRow, name)
            if row is None:
                raise PacsSettingsError(f"There is no PACS connection named {name!r}.")
            session.delete(row)
        self.secrets.delete(name)
        self.audit.append(actor.username, "pacs_connection_removed", name)
