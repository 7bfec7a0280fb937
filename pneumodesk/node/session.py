"""The signed-in user, as handed to every service call.

A ``UserSession`` is proof of a successful sign-in *inside this process* only; services never trust its
``permissions`` snapshot for decisions, they re-read the account (role, disabled flag) from the store on every
checked call. The snapshot is for the GUI, which only hides what the service would refuse anyway.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from .permissions import Permission


@dataclass(frozen=True)
class UserSession:
    user_id: int
    username: str
    display_name: str
    role: str
    permissions: frozenset[Permission]
    must_change_password: bool
    started: dt.datetime

    def can(self, permission: Permission) -> bool:
        """Whether the role held at sign-in (or the last refresh) grants ``permission``: for showing, not enforcing."""
        return permission in self.permissions

    @property
    def is_owner(self) -> bool:
        from .permissions import OWNER

        return self.role == OWNER
