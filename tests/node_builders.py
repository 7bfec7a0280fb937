"""Node stores with accounts for tests: an Owner and a Clinician who has already chosen their own password.

The passwords below exist only in tests; production code has no default password anywhere.
"""

from __future__ import annotations

from pathlib import Path

from pneumodesk.node import NodeService, UserSession

OWNER = ("olivia.owner", "Olivia Owner", "tulip harbour 4821")
CLINICIAN = ("carl.reader", "Carl Reader", "maple canyon 7302")
TEMPORARY = "granite river 913"


def seed_node(home: Path) -> None:
    """An Owner and a Clinician (password already changed from the temporary one) in ``home``'s store."""
    node = NodeService.open(home)
    try:
        node.accounts.create_owner(*OWNER)
        owner = node.accounts.authenticate(OWNER[0], OWNER[2])
        node.accounts.create_account(owner, CLINICIAN[0], CLINICIAN[1], "Clinician", TEMPORARY)
        first = node.accounts.authenticate(CLINICIAN[0], TEMPORARY)
        node.accounts.change_password(first, TEMPORARY, CLINICIAN[2])
    finally:
        node.close()


def sign_in(home: Path, username: str, password: str) -> UserSession:
    node = NodeService.open(home)
    try:
        return node.accounts.authenticate(username, password)
    finally:
        node.close()
