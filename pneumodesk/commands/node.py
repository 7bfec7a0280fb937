"""``pneumodesk node …``: enrol this node with a federation, show its state, and take part in training headless.

``enrol`` needs an account with manage_federation (password from a prompt or ``--password-stdin``). ``run`` signs
nobody in: it acts as the system actor "node" and does only what an admin approved (by plan hash) within the node
policy and privacy budget; approvals themselves always need an admin (GUI or ``pneumodesk approvals``).
``status`` reads the local state and, with ``--check``, asks the coordinator whether the node is approved.
"""

from __future__ import annotations

import argparse
import getpass
import json
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the node stack and the client load only when a node command runs
    from pneumodesk.client.keys import NodeKeyStore
    from pneumodesk.client.participation import EngineStatus
    from pneumodesk.node import NodeService


def add_node_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    node = commands.add_parser("node", help="federation membership and headless training of this node")
    actions = node.add_subparsers(dest="node_command", required=True)

    enrol = actions.add_parser("enrol", help="enrol this node with a federation coordinator (one-time code)")
    enrol.add_argument("url", help="the coordinator's address, e.g. https://coordinator.example.org:8443")
    enrol.add_argument("--code", required=True, help="the one-time enrolment code from the federation operator "
                       "(write --code=CODE when it starts with -)")
    enrol.add_argument("--ca", required=True, type=Path, metavar="FILE",
                       help="the federation's CA certificate (ca.pem) from the operator; it is pinned")
    enrol.add_argument("--name", required=True, help="this node's name as the operator will see it")
    enrol.add_argument("--user", required=True, metavar="NAME", help="your account (needs manage_federation)")
    enrol.add_argument("--password-stdin", action="store_true", help="read your password from standard input")
    enrol.add_argument("--wait", type=float, default=0.0, metavar="SECONDS",
                       help="then wait up to SECONDS for the operator's approval")
    enrol.set_defaults(run=node_command)

    status = actions.add_parser("status", help="show the federation membership, key storage and what was sent")
    status.add_argument("--check", action="store_true", help="also ask the coordinator whether the node is approved")
    status.add_argument("--json", action="store_true", help="print JSON")
    status.set_defaults(run=node_command)

    run = actions.add_parser("run", help="take part in an approved plan's rounds until it ends (headless)")
    run.add_argument("--plan", metavar="SHA256", help="the plan (default: the only active approval)")
    run.add_argument("--once", action="store_true", help="train one round, wait for its result, then exit")
    run.add_argument("--rounds", type=int, metavar="N", help="train at most N rounds in this run")
    run.add_argument("--poll", type=float, default=30.0, metavar="SECONDS", help="long-poll timeout (default 30)")
    run.add_argument("--candidates", choices=["final", "every", "none"], default="final",
                     help="offer new global models to the admin: the last one (default), every one, or none")
    run.add_argument("--threads", type=int, metavar="N", help="torch threads for training (default: torch's choice; "
                     "1 is best on a busy 2-core machine)")
    run.add_argument("--json", action="store_true", help="print each status change as a JSON line")
    run.set_defaults(run=node_command)


def node_command(args: argparse.Namespace) -> int:
    from pneumodesk.client.errors import ClientError
    from pneumodesk.client.home_key_store import HomeKeyStore
    from pneumodesk.node import NodeError, NodeService

    service = NodeService.open(args.home)
    keys = HomeKeyStore(service.home)  # the one store of this node's key, handed to everything below
    try:
        if args.node_command == "enrol":
            return _enrol(service, keys, args)
        if args.node_command == "status":
            return _status(service, keys, args)
        return _run(service, keys, args)
    except (NodeError, ClientError) as error:
        print(f"pneumodesk node: {error}", file=sys.stderr)
        return 1
    finally:
        service.close()


def _enrol(service: NodeService, keys: NodeKeyStore, args: argparse.Namespace) -> int:
    from pneumodesk.client.enrolment import connect, enrol, wait_for_approval

    password = sys.stdin.readline().rstrip("\r\n") if args.password_stdin else getpass.getpass(
        f"Password for {args.user}: ")
    actor = service.accounts.authenticate(args.user, password)
    membership = enrol(service, actor, service.home, args.url, args.code, args.ca, args.name, key_store=keys)
    print(f"Enrolled as {membership.node_name!r} (node id {membership.node_id}) with {membership.coordinator_url}; "
          f"status: {membership.status}.")
    print(keys.status_text())
    from pneumodesk.federation.vocabulary import MembershipStatus

    if args.wait > 0 and membership.status == MembershipStatus.PENDING:
        connection = connect(service, keys)
        try:
            final = wait_for_approval(service, connection, timeout=args.wait)
        finally:
            connection.close()
        print(f"Status: {final}.")
        return 0 if final == MembershipStatus.APPROVED else 1
    return 0


def _status(service: NodeService, keys: NodeKeyStore, args: argparse.Namespace) -> int:
    from pneumodesk.client.enrolment import connect, refresh_status
    from pneumodesk.client.errors import ClientError

    membership = service.membership.get()
    report: dict[str, object] = {"enrolled": membership is not None, "key_storage": keys.status_text()}
    if membership is not None:
        report.update(coordinator=membership.coordinator_url, node_id=membership.node_id,
                      node_name=membership.node_name, status=membership.status,
                      ca_sha256=membership.ca_pem_sha256, enrolled_at=membership.enrolled_at.isoformat())
        if args.check:
            try:
                connection = connect(service, keys)
                try:
                    report["status"] = refresh_status(service, connection)
                    report["connection"] = "reachable"
                finally:
                    connection.close()
            except ClientError as error:
                report["connection"] = str(error)
    sent = service.egress.totals()
    report["sent"] = sent
    if args.json:
        print(json.dumps(report, sort_keys=True))
        return 0
    if membership is None:
        print("This node is not enrolled with a federation.")
    else:
        print(f"Coordinator: {report['coordinator']}\nNode: {report['node_name']} ({report['node_id']})\n"
              f"Status: {report['status']}\nPinned CA sha256: {report['ca_sha256']}")
        if "connection" in report:
            print(f"Connection: {report['connection']}")
    print(report["key_storage"])
    print(f"Sent so far: {sent.get('requests', 0)} requests, {sent.get('bytes_sent', 0)} bytes.")
    return 0


def _plan_to_run(service: NodeService, keys: NodeKeyStore, requested: str | None) -> str:
    """``--plan``, else the coordinator's only active plan that an admin approved here."""
    from pneumodesk.client.enrolment import connect
    from pneumodesk.client.errors import ClientError
    from pneumodesk.federation.vocabulary import PlanStatus

    if requested:
        return requested.lower()
    connection = connect(service, keys)
    try:
        plans = connection.client.plans()
    finally:
        connection.close()
    approved = [p.plan_sha256 for p in plans
                if p.status == PlanStatus.ACTIVE and service.approvals.active(p.plan_sha256)]
    if len(approved) == 1:
        return approved[0]
    if not approved:
        raise ClientError("No active plan of the federation is approved on this node; an admin must approve one.")
    raise ClientError("Several plans are approved; choose one with --plan: " + ", ".join(sorted(approved)) + ".")


def _run(service: NodeService, keys: NodeKeyStore, args: argparse.Namespace) -> int:
    from pneumodesk.client.participation import EngineOptions, EngineStage, ParticipationEngine

    plan = _plan_to_run(service, keys, args.plan)
    if args.threads:
        import torch

        torch.set_num_threads(max(1, args.threads))
    max_rounds = 1 if args.once else args.rounds
    options = EngineOptions(poll_timeout=args.poll, max_rounds=max_rounds, candidates=args.candidates)
    last: list[tuple[str, str]] = []

    def show(status: EngineStatus) -> None:
        key = (str(status.phase), status.message if status.phase != EngineStage.TRAINING else str(status.round_number))
        if last and last[-1] == key:
            return
        last[:] = [key]
        if args.json:
            print(json.dumps({"phase": str(status.phase), "message": status.message, "round": status.round_number,
                              "rounds_trained": status.rounds_trained, "retry_in": status.retry_in}), flush=True)
        else:
            print(f"[{status.phase}] {status.message}", flush=True)

    engine = ParticipationEngine(service, plan, key_store=keys, options=options, on_status=show)
    previous = {sig: signal.signal(sig, lambda *_: engine.stop()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        result = engine.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if result.phase == EngineStage.FINISHED:
        return 0
    return 130 if result.phase == EngineStage.STOPPED else 1
