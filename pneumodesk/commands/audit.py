"""``pneumodesk audit verify``: walk the audit chain; exit 0 when intact, 1 naming the first bad entry."""

from __future__ import annotations

import argparse
import sys


def add_audit_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    audit = commands.add_parser("audit", help="the node's audit log")
    actions = audit.add_subparsers(dest="audit_command", required=True)
    verify = actions.add_parser("verify", help="check that no audit entry was changed, deleted or reordered")
    verify.set_defaults(run=audit_verify_command)


def audit_verify_command(args: argparse.Namespace) -> int:
    """No sign-in: the answer reveals only whether the chain is intact, never an entry's content."""
    from pneumodesk.node import NodeService

    node = NodeService.open(args.home)
    try:
        report = node.verify_audit()
    finally:
        node.close()
    if report.intact:
        print(f"Audit log intact: {report.checked} entries verified.")
        return 0
    print(f"Audit log NOT intact: first bad entry {report.first_bad_id}: {report.problem}.", file=sys.stderr)
    return 1
