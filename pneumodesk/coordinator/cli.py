"""``pneumodesk-coordinator``: create a coordinator folder, serve it over TLS, and the operator commands.

The commands act through ``CoordinatorService`` on the same database as the running server, so an operator can
approve a node or publish a plan while it serves; what they change is audited with the actor ``local:<os user>``.
Errors users can hit print one plain sentence and exit 1.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from pneumodesk import __version__
from pneumodesk.federation.errors import FederationError

from .errors import CoordinatorError

if TYPE_CHECKING:
    from .service import CoordinatorService


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except (CoordinatorError, FederationError) as error:
        print(f"pneumodesk-coordinator: {error}", file=sys.stderr)
        return 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pneumodesk-coordinator", description="The PneumoDesk federation coordinator."
    )
    parser.add_argument("--version", action="version", version=f"PneumoDesk coordinator {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    def command(name: str, help_text: str, run: Callable[[argparse.Namespace], int | None],
                parent: argparse._SubParsersAction[argparse.ArgumentParser] = commands) -> argparse.ArgumentParser:
        sub = parent.add_parser(name, help=help_text, description=help_text)
        sub.add_argument("dir", type=Path, metavar="DIR", help="the coordinator folder")
        sub.add_argument("--database-url", help="SQLAlchemy URL (default: the config's, else SQLite in DIR)")
        sub.set_defaults(run=run)
        return sub

    init = command("init", "create a coordinator folder: config, CA + server certificate, database, first operator",
                   _init)
    init.add_argument("--host", action="append", default=[], help="host name or IP for the certificate (repeatable)")
    init.add_argument("--port", type=int, default=8443)
    init.add_argument("--operator", default="admin", help="first operator's user name (default admin)")
    init.add_argument("--password-stdin", action="store_true", help="read the operator password from stdin")
    init.add_argument("--model", type=Path, metavar="BUNDLE", help="initial model bundle (default: bundled model)")

    serve = command("serve", "serve the API over HTTPS with uvicorn", _serve)
    serve.add_argument("--host", help="address to listen on (default: the config's)")
    serve.add_argument("--port", type=int, help="port (default: the config's)")
    serve.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    serve.add_argument("--log-format", choices=["text", "json"], default="text",
                       help="log lines as text or as JSON objects with the request id (default text)")
    serve.add_argument("--workers", type=int, default=1,
                       help="worker processes (default 1; more than one needs PostgreSQL)")

    code = command("enrol-code", "print a one-time enrolment code for a new hospital node", _enrol_code)
    code.add_argument("--hours", type=float, help="hours until the code expires (default: the config's)")

    operators = commands.add_parser("operators", help="operator accounts").add_subparsers(dest="action", required=True)
    add = command("add", "add an operator account", _operators_add, operators)
    add.add_argument("username")
    add.add_argument("--role", choices=["operator", "viewer"], default="viewer")
    add.add_argument("--password-stdin", action="store_true")
    command("list", "list operator accounts with their roles", _operators_list, operators)
    command("disable", "disable an operator account (its tokens stop working at once)", _operators_active,
            operators).add_argument("username")
    command("enable", "enable a disabled operator account again", _operators_active, operators).add_argument(
        "username")

    audit = command("audit", "print the audit log (oldest first, JSON)", _audit)
    audit.add_argument("--limit", type=int, help="only the newest N entries")
    audit.add_argument("--after-id", type=int, default=0, help="only entries with a larger id")

    nodes = commands.add_parser("nodes", help="hospital nodes").add_subparsers(dest="action", required=True)
    command("list", "list enrolled nodes", _nodes_list, nodes)
    command("approve", "approve a pending node", _nodes_decide, nodes).add_argument("node_id")
    command("revoke", "revoke a node (takes effect on its next request)", _nodes_decide, nodes).add_argument("node_id")

    plans = commands.add_parser("plans", help="training plans").add_subparsers(dest="action", required=True)
    command("publish", "validate and publish a plan (JSON file); opens its first round", _plans_publish,
            plans).add_argument("file", type=Path)
    command("list", "list plans and their sha256", _plans_list, plans)

    rounds = commands.add_parser("rounds", help="rounds").add_subparsers(dest="action", required=True)
    command("status", "show every round's state", _rounds_status, rounds)

    models = commands.add_parser("models", help="model versions").add_subparsers(dest="action", required=True)
    command("list", "list model versions and their lineage", _models_list, models)
    export = command("export", "write a model version as a bundle folder", _models_export, models)
    export.add_argument("version", type=int)
    export.add_argument("out", type=Path)
    command("import", "add a model bundle folder as a new root model version", _models_import,
            models).add_argument("bundle", type=Path)
    return parser


def _service(args: argparse.Namespace) -> CoordinatorService:
    from .service import CoordinatorService

    return CoordinatorService.open(args.dir, args.database_url)


def _actor() -> str:
    from .audit import local_actor

    return local_actor()


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("New operator password: ")
    if first != getpass.getpass("Repeat the password: "):
        raise CoordinatorError("The two passwords differ.")
    return first


def _print(rows: list) -> None:
    print(json.dumps([row.model_dump(mode="json") for row in rows], indent=2))


def _init(args: argparse.Namespace) -> int:
    from .setup import initialise

    password = _password(args.password_stdin)
    summary = initialise(args.dir, hosts=args.host, port=args.port, operator=args.operator, password=password,
                         database_url=args.database_url, model=args.model)
    print(summary)
    return 0


SERVER_EXTRA_MISSING = (
    "serving needs the coordinator's server libraries (FastAPI, uvicorn), which the workstation app does not ship; "
    "install them with: pip install 'pneumodesk[coordinator]'"
)


def _serve(args: argparse.Namespace) -> int:
    import logging.config
    import tempfile

    try:
        import fastapi  # noqa: F401  (only to say plainly when the extra is missing)
        import uvicorn
    except ImportError as missing:
        raise CoordinatorError(SERVER_EXTRA_MISSING) from missing

    from .api import create_app
    from .metrics import MULTIPROCESS_ENV
    from .observability import log_config

    if args.workers < 1:
        raise CoordinatorError("--workers must be at least 1.")
    logging_setup = log_config(args.log_level, args.log_format == "json")
    logging.config.dictConfig(logging_setup)
    if args.workers > 1:  # before any metric exists in this process or a worker: every worker writes its counters
        os.environ[MULTIPROCESS_ENV] = tempfile.mkdtemp(prefix="pneumodesk-metrics-")
    service = _service(args)  # applies pending migrations once, before any worker starts
    config, paths = service.config, service.paths
    options = dict(host=args.host or config.host, port=args.port or config.port,
                   ssl_certfile=str(paths.server_cert), ssl_keyfile=str(paths.server_key),
                   log_level=args.log_level, timeout_graceful_shutdown=30, server_header=False,
                   timeout_keep_alive=config.keep_alive_seconds, log_config=logging_setup)
    if args.workers == 1:
        uvicorn.run(create_app(service), **options)
        return 0
    if service.engine.dialect.name != "postgresql":
        raise CoordinatorError("Several workers need a PostgreSQL database (--database-url or the config's "
                               "database_url); SQLite serves one worker.")
    service.close()
    # Each worker process builds its own app from the environment (``app_from_environment``).
    os.environ["PNEUMODESK_COORDINATOR_DIR"] = str(args.dir.resolve())
    if args.database_url:
        os.environ["PNEUMODESK_DATABASE_URL"] = args.database_url
    uvicorn.run("pneumodesk.coordinator.api:app_from_environment", factory=True, workers=args.workers,
                **options)
    return 0


def _enrol_code(args: argparse.Namespace) -> int:
    code = _service(args).create_enrolment_code(args.hours, actor=_actor())
    print(json.dumps(code.model_dump()))
    return 0


def _operators_add(args: argparse.Namespace) -> int:
    _service(args).create_operator(args.username, _password(args.password_stdin), args.role, actor=_actor())
    print(f"Operator {args.username} added with role {args.role}.")
    return 0


def _operators_list(args: argparse.Namespace) -> int:
    print(json.dumps(_service(args).list_operators(), indent=2))
    return 0


def _operators_active(args: argparse.Namespace) -> int:
    active = args.action == "enable"
    _service(args).set_operator_active(args.username, active, actor=_actor())
    print(f"Operator {args.username} {'enabled' if active else 'disabled'}.")
    return 0


def _audit(args: argparse.Namespace) -> int:
    if args.limit is not None and args.limit < 1:
        raise CoordinatorError("--limit must be at least 1.")
    _print(_service(args).read_audit(args.limit, args.after_id))
    return 0


def _nodes_list(args: argparse.Namespace) -> int:
    _print(_service(args).list_nodes())
    return 0


def _nodes_decide(args: argparse.Namespace) -> int:
    service = _service(args)
    decide = service.approve_node if args.action == "approve" else service.revoke_node
    print(json.dumps(decide(args.node_id, actor=_actor()).model_dump()))
    return 0


def _plans_publish(args: argparse.Namespace) -> int:
    try:
        data = args.file.read_bytes()
    except OSError as error:
        raise CoordinatorError(f"Cannot read the plan file: {error}.") from None
    summary = _service(args).publish_plan(data, actor=_actor())
    print(json.dumps({"plan_sha256": summary.plan_sha256, "name": summary.name, "status": summary.status}))
    return 0


def _plans_list(args: argparse.Namespace) -> int:
    _print(_service(args).list_plans())
    return 0


def _rounds_status(args: argparse.Namespace) -> int:
    _print(_service(args).all_rounds())
    return 0


def _models_list(args: argparse.Namespace) -> int:
    _print(_service(args).list_models())
    return 0


def _models_export(args: argparse.Namespace) -> int:
    out = _service(args).export_model(args.version, args.out, actor=_actor())
    print(f"Model version {args.version} written to {out}.")
    return 0


def _models_import(args: argparse.Namespace) -> int:
    print(json.dumps(_service(args).import_model(args.bundle, actor=_actor()).model_dump()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
