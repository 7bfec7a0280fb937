"""``pneumodesk accounts …``: scripted account administration, authenticated as an account with manage_accounts.

Passwords come from a hidden prompt, or with ``--password-stdin`` one per line from standard input (first the
signing-in account's, then the new password where the command sets one); never from the command line. Nothing
here prints a password or a hash.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the node stack (SQLAlchemy, Alembic, argon2) is imported only when an accounts command runs
    from pneumodesk.node import NodeService, UserSession


class _Passwords:
    """Hands out passwords in order, from stdin lines or from getpass prompts."""

    def __init__(self, from_stdin: bool) -> None:
        self._lines: Iterator[str] | None = iter(sys.stdin.read().splitlines()) if from_stdin else None

    def current(self, prompt: str) -> str:
        from pneumodesk.node import NodeError

        if self._lines is not None:
            try:
                return next(self._lines)
            except StopIteration:
                raise NodeError("Not enough lines on standard input: one password per line is needed.") from None
        return getpass.getpass(prompt)

    def new(self, whose: str) -> str:
        from pneumodesk.node import NodeError
        from pneumodesk.node.passwords import PASSWORD_RULES

        if self._lines is not None:
            return self.current("")
        print("Password rules: " + "; ".join(PASSWORD_RULES) + ".", file=sys.stderr)
        first = getpass.getpass(f"New password for {whose}: ")
        if getpass.getpass("Repeat it: ") != first:
            raise NodeError("The two passwords differ.")
        return first


def add_accounts_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    accounts = commands.add_parser("accounts", help="manage the node's accounts (needs manage_accounts)")
    actions = accounts.add_subparsers(dest="accounts_command", required=True)

    def action(name: str, help_text: str, signed_in: bool = True) -> argparse.ArgumentParser:
        parser = actions.add_parser(name, help=help_text)
        if signed_in:
            parser.add_argument("--user", required=True, metavar="NAME", help="your account (needs manage_accounts)")
        parser.add_argument("--password-stdin", action="store_true",
                            help="read passwords from standard input, one per line (yours first)")
        parser.set_defaults(run=accounts_command, accounts_action=name.replace("-", "_"))
        return parser

    owner = action("create-owner", "create the first Owner of a node that has none (no sign-in)", signed_in=False)
    owner.add_argument("username")
    owner.add_argument("--display-name", default="")
    action("list", "list the accounts")
    create = action("create", "create an account (its holder must change the password at first sign-in)")
    create.add_argument("username")
    create.add_argument("--role", required=True)
    create.add_argument("--display-name", default="")
    for name, text in (("disable", "disable an account"), ("enable", "enable an account"),
                       ("unlock", "lift a lockout after failed sign-ins"),
                       ("reset-password", "set a temporary password that must be changed at next sign-in")):
        action(name, text).add_argument("username")
    set_role = action("set-role", "give an account another role")
    set_role.add_argument("username")
    set_role.add_argument("role")


def accounts_command(args: argparse.Namespace) -> int:
    from pneumodesk.node import NodeError, NodeService

    node = NodeService.open(args.home)
    try:
        passwords = _Passwords(args.password_stdin)
        if args.accounts_action == "create_owner":
            node.accounts.create_owner(args.username, args.display_name, passwords.new(args.username))
            print(f"Created the Owner account {args.username.strip().lower()}.")
            return 0
        actor = node.accounts.authenticate(args.user, passwords.current(f"Password for {args.user}: "))
        return _run(node, actor, args, passwords)
    except NodeError as error:
        print(f"pneumodesk accounts: {error}", file=sys.stderr)
        return 1
    finally:
        node.close()


def _run(node: NodeService, actor: UserSession, args: argparse.Namespace, passwords: _Passwords) -> int:
    from pneumodesk.node.models import utcnow

    service, what = node.accounts, args.accounts_action
    if what == "list":
        now = utcnow()
        print(f"{'user':<20} {'role':<20} {'state':<10} display name")
        for account in service.list_accounts(actor):
            state = "disabled" if account.disabled else "locked" if account.locked(now) else "active"
            if account.must_change_password:
                state += "*"
            print(f"{account.username:<20} {account.role:<20} {state:<10} {account.display_name}")
        return 0
    if what == "create":
        service.create_account(actor, args.username, args.display_name, args.role, passwords.new(args.username))
        message = f"Created {args.username} ({args.role}); the password must be changed at first sign-in."
    elif what in ("disable", "enable"):
        service.set_disabled(actor, args.username, what == "disable")
        message = f"{what.capitalize()}d {args.username}."
    elif what == "unlock":
        service.unlock(actor, args.username)
        message = f"Unlocked {args.username}."
    elif what == "reset_password":
        service.reset_password(actor, args.username, passwords.new(args.username))
        message = f"Reset the password of {args.username}; it must be changed at next sign-in."
    elif what == "set_role":
        service.set_role(actor, args.username, args.role)
        message = f"{args.username} now has the role {args.role}."
    else:  # pragma: no cover - argparse only offers the actions above
        raise AssertionError(what)
    print(message)
    return 0
