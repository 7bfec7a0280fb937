"""``pneumodesk policy show | set KEY=VALUE...`` (set needs approve_training) and ``pneumodesk egress [--csv FILE]``
(what left this machine; needs manage_federation or view_audit)."""

from __future__ import annotations

import argparse
from pathlib import Path

from pneumodesk.commands.datasets import add_sign_in_arguments, run_node_command, signed_in


def add_policy_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    policy = commands.add_parser("policy", help="the node's training policy: privacy cap, bounds, requirements")
    actions = policy.add_subparsers(dest="policy_command", required=True)
    show = actions.add_parser("show", help="print the policy")
    change = actions.add_parser("set", help="change settings, e.g. epsilon_cap_per_dataset=8 require_dp=yes "
                                            "allowed_architectures=pneumonet-s,pneumonet-tiny")
    change.add_argument("settings", nargs="+", metavar="KEY=VALUE")
    add_sign_in_arguments(show, "any account")
    add_sign_in_arguments(change, "needs approve_training")
    for parser in (show, change):
        parser.set_defaults(run=policy_command)

    egress = commands.add_parser("egress", help="what this node sent to its coordinator (the egress log)")
    egress.add_argument("--csv", type=Path, metavar="FILE", help="write the whole log as CSV to FILE")
    egress.add_argument("--limit", type=int, default=50, help="newest rows to print (default 50)")
    add_sign_in_arguments(egress, "needs manage_federation or view_audit")
    egress.set_defaults(run=egress_command)


def policy_command(args: argparse.Namespace) -> int:
    return run_node_command("policy", _policy, args)


def _policy(args: argparse.Namespace) -> int:
    from pneumodesk.node import PolicyError

    with signed_in(args) as (node, actor):
        if args.policy_command == "set":
            changes: dict[str, str] = {}
            for item in args.settings:
                key, sep, value = item.partition("=")
                if not sep or not key.strip():
                    raise PolicyError([f"{item!r} is not KEY=VALUE"])
                changes[key.strip()] = value.strip()
            node.policy.set(actor, node.policy.get().with_settings(**changes))
            print("Policy saved.")
        else:
            node.accounts.require_signed_in(actor)
        for key, value in node.policy.get().to_json_dict().items():
            shown = ",".join(value) if isinstance(value, list) else value
            print(f"{key} = {shown}")
    return 0


def egress_command(args: argparse.Namespace) -> int:
    return run_node_command("egress", _egress, args)


def _egress(args: argparse.Namespace) -> int:
    with signed_in(args) as (node, actor):
        if args.csv is not None:
            node.egress.export_csv(actor, args.csv)
            print(f"Wrote the egress log to {args.csv}.")
            return 0
        records = node.egress.read(actor, limit=args.limit)
        totals = node.egress.totals()
        for r in records:
            status = "-" if r.status is None else r.status
            print(f"{r.time.isoformat(timespec='seconds')}  {r.method:<6} {r.endpoint}  sent {r.bytes_sent} B, "
                  f"received {r.bytes_received} B, status {status}  ({r.purpose})")
        print(f"{totals['requests']} request(s) in all; {totals['bytes_sent']} bytes sent, "
              f"{totals['bytes_received']} bytes received.")
    return 0
