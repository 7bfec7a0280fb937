"""``pneumodesk datasets add NAME PATH | add-confirmed [NAME] | list | remove ID``: local datasets on a headless node
(manage_datasets); ``add-confirmed`` registers the clinicians' confirmed readings as a dataset.

Every node admin command signs in like ``pneumodesk accounts``: ``--user NAME`` and the password from a hidden
prompt or, with ``--password-stdin``, the first line of standard input (never from the command line).
``signed_in`` is shared by the datasets, policy, models, egress and plans commands.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the node stack is imported only when a command runs
    from pneumodesk.node import DatasetInfo, NodeService, UserSession


def add_sign_in_arguments(parser: argparse.ArgumentParser, needs: str) -> None:
    parser.add_argument("--user", required=True, metavar="NAME", help=f"your account ({needs})")
    parser.add_argument("--password-stdin", action="store_true", help="read your password from standard input")


@contextmanager
def signed_in(args: argparse.Namespace) -> Iterator[tuple[NodeService, UserSession]]:
    """Open the node store in ``--home`` and sign ``--user`` in; the store is closed afterwards."""
    from pneumodesk.commands.accounts import _Passwords
    from pneumodesk.node import NodeService

    node = NodeService.open(args.home)
    try:
        password = _Passwords(args.password_stdin).current(f"Password for {args.user}: ")
        yield node, node.accounts.authenticate(args.user, password)
    finally:
        node.close()


def run_node_command(name: str, body: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """Run ``body``; a ``NodeError`` (or a dataset/plan problem) becomes a plain message and exit status 1."""
    from pneumodesk.federation.errors import FederationError
    from pneumodesk.node import NodeError

    try:
        return body(args)
    except (NodeError, FederationError) as error:
        print(f"pneumodesk {name}: {error}", file=sys.stderr)
        return 1


def add_datasets_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    datasets = commands.add_parser("datasets", help="register local labelled datasets (needs manage_datasets)")
    actions = datasets.add_subparsers(dest="datasets_command", required=True)
    add = actions.add_parser("add", help="register a NORMAL/PNEUMONIA folder or a path,label CSV (nothing copied)")
    add.add_argument("name")
    add.add_argument("path", type=Path)
    confirmed = actions.add_parser("add-confirmed", help="register the clinicians' confirmed readings as a dataset "
                                   "(images stay where they were read)")
    confirmed.add_argument("name", nargs="?", default="Confirmed cases")
    listing = actions.add_parser("list", help="list the registered datasets")
    remove = actions.add_parser("remove", help="forget a dataset (its files are not touched)")
    remove.add_argument("dataset_id", type=int, metavar="ID")
    for parser in (add, confirmed, listing, remove):
        add_sign_in_arguments(parser, "needs manage_datasets")
        parser.set_defaults(run=datasets_command)


def describe_dataset(info: DatasetInfo) -> str:
    return (f"{info.id:>3}  {info.name}  ({info.kind}: {info.normal} normal, {info.pneumonia} pneumonia; "
            f"{info.training_count} training / {info.validation_count} validation; "
            f"{len(info.unreadable)} unreadable)  {info.source}")


def datasets_command(args: argparse.Namespace) -> int:
    return run_node_command("datasets", _datasets, args)


def _datasets(args: argparse.Namespace) -> int:
    with signed_in(args) as (node, actor):
        if args.datasets_command in ("add", "add-confirmed"):
            info = (node.datasets.register(actor, args.name, args.path) if args.datasets_command == "add"
                    else node.confirmed_cases.register(actor, args.name))
            print(f"Registered dataset {info.id}:")
            print(describe_dataset(info))
            for path, reason in info.unreadable:
                print(f"  unreadable: {path}: {reason}")
        elif args.datasets_command == "list":
            found = node.datasets.list(actor)
            for info in found:
                print(describe_dataset(info))
            if not found:
                print("No datasets are registered.")
        else:
            node.datasets.remove(actor, args.dataset_id)
            print(f"Removed dataset {args.dataset_id} (its files were not touched).")
    return 0
