"""Property-based fuzzing of the coordinator's HTTP API from its own OpenAPI description (Schemathesis).

A real coordinator (``CoordinatorService`` on its SQLite database and blob store, ``create_app``) is driven in-process
over ASGI; Schemathesis generates requests for every operation of the served description, in each auth mode (no
token, an approved node's token, a viewer's and an operator's token), with data that fits the description and data
that does not. Each answer must have:

- no 5xx;
- an error body (4xx) that is exactly the one JSON error schema (``ErrorBody``), its ``error`` an ``ErrorCode`` value;
- the status code, content type and body schema the description documents;
- no access without the operation's role (``ACCESS``): a caller without it is answered 401 or 403 (or 413, when the
  body is over the limit and refused before anyone reads it);
- no change to the stored state when the request was refused (4xx): every database table and every stored file is
  compared before and after, except what a refusal records by design (``REFUSALS_MAY_CHANGE``).

Used by tests/e2e/test_coordinator_api_fuzz.py (bounded, derandomised) and benchmarks/fuzz_api.py (longer runs).
"""

from __future__ import annotations

import hashlib
import json
import struct
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

import hypothesis
import schemathesis
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import strategies as st
from schemathesis import GenerationMode, Response
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import MetaData, Table, select

from pneumodesk.coordinator.api import create_app
from pneumodesk.coordinator.config import CoordinatorConfig, CoordinatorPaths
from pneumodesk.coordinator.service import CoordinatorService
from pneumodesk.coordinator.setup import initialise
from pneumodesk.federation.messages import API_PREFIX, SHA256_HEADER, challenge_bytes
from pneumodesk.federation.vocabulary import ErrorCode

PASSWORD = "a long enough password"
VIEWER = "watcher"


class Access(Enum):
    """Who may call an operation."""

    PUBLIC = "public"
    NODE = "node"  # an approved node's token
    VIEWER = "viewer"  # an operator token, viewer role or better
    OPERATOR = "operator"  # an operator token with the operator role
    ENROLLED = "enrolled"  # a node or an operator (viewer role or better)


#: Each auth mode and what it may call. A new route fails the suite until it is classified in ``ACCESS``.
AUTH_MODES: dict[str, frozenset[Access]] = {
    "none": frozenset({Access.PUBLIC}),
    "node": frozenset({Access.PUBLIC, Access.NODE, Access.ENROLLED}),
    "viewer": frozenset({Access.PUBLIC, Access.VIEWER, Access.ENROLLED}),
    "operator": frozenset({Access.PUBLIC, Access.VIEWER, Access.OPERATOR, Access.ENROLLED}),
}

_P = API_PREFIX
_SECURE = f"{_P}/rounds/{{round_id}}/secure"
#: The role each operation needs, written down by hand (not read from the routes): the thing the fuzzer checks.
ACCESS: dict[str, Access] = {
    f"GET {_P}/health": Access.PUBLIC,
    f"GET {_P}/version": Access.PUBLIC,
    f"POST {_P}/operators/login": Access.PUBLIC,
    f"GET {_P}/audit": Access.VIEWER,
    f"POST {_P}/enrolment-codes": Access.OPERATOR,
    f"GET {_P}/nodes": Access.VIEWER,
    f"POST {_P}/nodes/{{node_id}}/approve": Access.OPERATOR,
    f"POST {_P}/nodes/{{node_id}}/revoke": Access.OPERATOR,
    f"POST {_P}/plans": Access.OPERATOR,
    f"GET {_P}/rounds": Access.VIEWER,
    f"GET {_P}/models": Access.ENROLLED,
    f"GET {_P}/models/{{version}}/weights": Access.ENROLLED,
    f"POST {_P}/nodes/enrol": Access.PUBLIC,
    f"POST {_P}/nodes/{{node_id}}/challenge": Access.PUBLIC,
    f"POST {_P}/nodes/{{node_id}}/token": Access.PUBLIC,
    f"GET {_P}/plans": Access.ENROLLED,
    f"GET {_P}/plans/{{sha}}": Access.ENROLLED,
    f"GET {_P}/plans/{{sha}}/wait": Access.ENROLLED,
    f"POST {_P}/plans/{{sha}}/join": Access.NODE,
    f"GET {_P}/rounds/{{round_id}}": Access.ENROLLED,
    f"PUT {_P}/rounds/{{round_id}}/update": Access.NODE,
    f"POST {_SECURE}/advertisement": Access.NODE,
    f"GET {_SECURE}/roster": Access.NODE,
    f"POST {_SECURE}/shares": Access.NODE,
    f"GET {_SECURE}/delivery": Access.NODE,
    f"PUT {_SECURE}/update": Access.NODE,
    f"GET {_SECURE}/survivors": Access.NODE,
    f"POST {_SECURE}/consistency": Access.NODE,
    f"GET {_SECURE}/unmask-request": Access.NODE,
    f"POST {_SECURE}/unmask": Access.NODE,
}

#: What a refused request may change, by design: a failed login is audited (who tried, from where), and a token
#: request uses up its challenge whatever its outcome (a nonce is single-use). Table name → rows to leave out.
REFUSALS_MAY_CHANGE: dict[str, Callable[[dict[str, Any]], bool]] = {
    "audit_log": lambda row: row["action"] == "operator.login_failed",
    "challenges": lambda row: True,
}

_ERROR_CODES = frozenset(code.value for code in ErrorCode)
_ERROR_KEYS = frozenset({"error", "message", "details"})


def _b64url(data: bytes) -> str:
    import base64

    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _plan(base_sha256: str, *, secure: bool) -> bytes:
    plan: dict[str, Any] = {
        "name": "secure fuzz plan" if secure else "fuzz plan", "architecture": "pneumonet-tiny", "input_size": 32,
        "base_model_sha256": base_sha256, "learning_rate": 0.01, "rounds": 2, "min_nodes": 2 if secure else 3,
        "round_deadline_seconds": 3600, "secure_aggregation": secure, "dp": {"enabled": False},
    }
    return json.dumps(plan).encode()


@dataclass
class FuzzTarget:
    """A coordinator set up for fuzzing: an operator, a viewer, an approved node, a plain and a secure plan (each
    with an open round), and the Schemathesis schema loaded from the app's own /openapi.json."""

    directory: Path
    service: CoordinatorService
    app: Any
    schema: Any
    tokens: dict[str, str | None]
    known: dict[str, list[Any]]  # path parameter name → ids of things that exist, for generated cases
    ids: dict[str, Any]  # placeholder name → id, for the corpus (``{round_id}`` …)
    _tables: list[Table] | None = field(default=None, repr=False)

    @classmethod
    def create(cls, directory: Path, bundle: Path) -> FuzzTarget:
        initialise(directory, hosts=[], port=0, operator="admin", password=PASSWORD, model=bundle)
        paths = CoordinatorPaths(directory)
        # Long polls answer within a fraction of a second, so a generated ``timeout=600`` does not stall the run.
        config = CoordinatorConfig.load(paths)
        CoordinatorConfig(**{**config.__dict__, "long_poll_max_seconds": 0.2}).save(paths)
        service = CoordinatorService.open(directory)
        service.create_operator(VIEWER, PASSWORD, "viewer")
        key = Ed25519PrivateKey.generate()
        public = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        node_id = service.enrol(service.create_enrolment_code().code, "Fuzz hospital", _b64url(public)).node_id
        service.approve_node(node_id)
        challenge = service.new_challenge(node_id)
        signature = key.sign(challenge_bytes(challenge.audience, node_id, challenge.nonce))
        node_token = service.node_token(node_id, challenge.nonce, _b64url(signature)).access_token
        pending = Ed25519PrivateKey.generate().public_key().public_bytes(serialization.Encoding.Raw,
                                                                           serialization.PublicFormat.Raw)
        pending_id = service.enrol(service.create_enrolment_code().code, "Pending hospital", _b64url(pending)).node_id
        base = service.list_models()[0]
        plans = [service.publish_plan(_plan(base.sha256, secure=secure)) for secure in (False, True)]
        rounds = [r.round_id for r in service.all_rounds()]
        service.join(plans[0].plan_sha256, node_id)  # so that generated uploads reach the update's checks
        app = create_app(service)
        schema = schemathesis.openapi.from_asgi(f"{API_PREFIX}/openapi.json", app)
        tokens: dict[str, str | None] = {
            "none": None,
            "node": node_token,
            "viewer": service.login(VIEWER, PASSWORD).access_token,
            "operator": service.login("admin", PASSWORD).access_token,
        }
        # The operator's decisions are aimed at the pending node only, so the fuzzing node stays approved.
        known: dict[str, list[Any]] = {"node_id": [pending_id], "sha": [p.plan_sha256 for p in plans],
                                       "round_id": rounds, "version": [base.version]}
        ids = {"node_id": node_id, "pending_node_id": pending_id, "plan_sha": plans[0].plan_sha256,
               "secure_plan_sha": plans[1].plan_sha256, "round_id": rounds[0], "secure_round_id": rounds[1],
               "model_version": base.version}
        return cls(directory, service, app, schema, tokens, known, ids)

    def close(self) -> None:
        from schemathesis.python import asgi

        asgi.shutdown_lifespans()  # the app's lifespan (round sweeper) was started by the schema load
        self.service.close()

    def operations(self) -> list[Any]:
        return [result.ok() for result in self.schema.get_all_operations()]

    def snapshot(self) -> dict[str, Any]:
        """Every row of every table (less ``REFUSALS_MAY_CHANGE``) and every stored file's name and size."""
        if self._tables is None:
            metadata = MetaData()
            metadata.reflect(self.service.engine)
            self._tables = list(metadata.sorted_tables)
        state: dict[str, Any] = {}
        with self.service.engine.connect() as connection:
            for table in self._tables:
                skip = REFUSALS_MAY_CHANGE.get(table.name, lambda _row: False)
                rows = [dict(row._mapping) for row in connection.execute(select(table))]
                state[table.name] = sorted(repr(sorted(row.items())) for row in rows if not skip(row))
        files = [p for p in self.directory.rglob("*") if p.is_file() and not p.name.startswith("coordinator.db")]
        state["files"] = sorted((str(p.relative_to(self.directory)), p.stat().st_size) for p in files)
        return state


@dataclass
class Finding:
    """One answer that broke a property, with what reproduces it."""

    operation: str
    mode: str
    problem: str
    request: dict[str, Any]
    status: int
    body: str

    def describe(self) -> str:
        return (f"{self.operation} [{self.mode}] → {self.status}: {self.problem}\n"
                f"  request: {json.dumps(self.request)[:600]}\n  answer: {self.body[:400]}")


@dataclass
class FuzzStats:
    cases: Counter[str] = field(default_factory=Counter)  # per auth mode
    statuses: Counter[int] = field(default_factory=Counter)
    operations: set[str] = field(default_factory=set)
    findings: list[Finding] = field(default_factory=list)
    unsatisfiable: set[tuple[str, str]] = field(default_factory=set)  # (operation, generation mode)


def request_record(mode: str, response: Response) -> dict[str, Any]:
    """What was sent, in the corpus's form (tests/corpus/api/: the token replaced by the auth mode's name)."""
    sent = response.request
    body = sent.body.encode() if isinstance(sent.body, str) else sent.body
    headers = {k: v for k, v in sent.headers.items()
               if k.lower() not in {"authorization", "user-agent", "accept-encoding", "accept", "connection",
                                    "content-length"}}
    record: dict[str, Any] = {"auth": mode, "method": sent.method, "path": sent.path_url, "headers": headers}
    if isinstance(body, bytes):
        record["body"] = {"hex": body.hex()}
    return record


def _content_type(response: Response) -> str:
    return ",".join(response.headers.get("content-type", []))


def error_body_problem(response: Response) -> str | None:
    """Why an error answer is not the one JSON error schema, or None."""
    content_type = _content_type(response)
    if not content_type.startswith("application/json"):
        return f"error answer is not JSON ({content_type})"
    try:
        body = json.loads(response.content)
    except ValueError:
        return "error answer is not valid JSON"
    if not isinstance(body, dict) or not {"error", "message"} <= body.keys() or body.keys() - _ERROR_KEYS:
        return f"error body has keys {sorted(body) if isinstance(body, dict) else type(body).__name__}"
    if body["error"] not in _ERROR_CODES:
        return f"error code {body['error']!r} is not an ErrorCode"
    if not isinstance(body["message"], str) or not body["message"].strip():
        return "error message is not a sentence"
    details = body.get("details")
    if details is not None and not (isinstance(details, list) and all(isinstance(d, dict) for d in details)):
        return "error details are not a list of objects"
    return None


_SCHEMA_CHECKS = (not_a_server_error, status_code_conformance, content_type_conformance,
                  response_schema_conformance)


def judge(target: FuzzTarget, mode: str, case: Any, response: Response,
          before: dict[str, Any] | None) -> list[str]:
    """Every property this answer breaks."""
    problems = []
    label = f"{case.operation.method.upper()} {case.operation.path}"
    if response.status_code >= 500:
        problems.append("server error")
    if response.status_code >= 400:
        problem = error_body_problem(response)
        if problem:
            problems.append(problem)
    try:
        case.validate_response(response, checks=list(_SCHEMA_CHECKS))
    except AssertionError as failure:  # schemathesis' FailureGroup is an AssertionError
        problems.append(str(failure).strip().splitlines()[0] if str(failure).strip() else repr(failure))
    if ACCESS[label] not in AUTH_MODES[mode] and response.status_code not in (401, 403, 413):
        problems.append(f"reachable without the {ACCESS[label].value} role")
    if before is not None and response.status_code >= 400:
        after = target.snapshot()
        changed = sorted(name for name in set(before) | set(after) if before.get(name) != after.get(name))
        if changed:
            problems.append(f"refused request changed stored state: {', '.join(changed)}")
    return problems


def _known_parameters(target: FuzzTarget, operation: Any) -> dict[str, Any]:
    names = [p.name for p in operation.path_parameters]
    return {name: target.known[name] for name in names if name in target.known}


def case_strategy(target: FuzzTarget, operation: Any, generation_mode: GenerationMode) -> st.SearchStrategy[Any]:
    """Cases for ``operation``: fully generated, and (where it has path parameters) aimed at things that exist."""
    strategy = operation.as_strategy(generation_mode=generation_mode)
    known = _known_parameters(target, operation)
    if not known:
        return strategy

    @st.composite
    def aimed(draw: st.DrawFn) -> Any:
        chosen = {name: draw(st.sampled_from(values)) for name, values in known.items()}
        return draw(operation.as_strategy(generation_mode=generation_mode, path_parameters=chosen))

    return st.one_of(strategy, aimed())


def send(target: FuzzTarget, mode: str, case: Any, *, true_digest: bool = False) -> Response:
    """Send ``case`` with ``mode``'s token; ``true_digest`` replaces a generated X-Content-SHA256 by the body's
    real digest, so that the body gets past the transit check to the checks behind it."""
    case.headers = {k: v for k, v in (case.headers or {}).items() if k.lower() != "authorization"}
    if true_digest and SHA256_HEADER in case.headers and isinstance(case.body, bytes):
        case.headers[SHA256_HEADER] = hashlib.sha256(case.body).hexdigest()
    token = target.tokens[mode]
    headers = {"Authorization": f"Bearer {token}"} if token else None
    response = case.call(headers=headers, timeout=30)
    return response


def fuzz_operation(target: FuzzTarget, operation: Any, mode: str, generation_mode: GenerationMode, *,
                   max_examples: int, stats: FuzzStats, check_state: bool = True, seed: int = 0) -> None:
    """Run ``max_examples`` generated cases and record what broke; with ``seed`` 0 derandomised (the same cases
    every run), else the cases of that seed."""
    label = f"{operation.method.upper()} {operation.path}"
    stats.operations.add(label)

    @hypothesis.seed(seed)
    @hypothesis.settings(max_examples=max_examples, derandomize=not seed, database=None, deadline=None,
                         suppress_health_check=list(hypothesis.HealthCheck),
                         phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate])
    @hypothesis.given(case=case_strategy(target, operation, generation_mode), true_digest=st.booleans())
    def run(case: Any, true_digest: bool) -> None:
        before = target.snapshot() if check_state else None
        try:
            response = send(target, mode, case, true_digest=true_digest)
        except Exception as error:  # the in-process client re-raises what the app's 500 handler answered
            stats.cases[mode] += 1
            stats.statuses[500] += 1
            stats.findings.append(Finding(label, mode, f"server error: {type(error).__name__}: {error}",
                                          {"case": case.as_curl_command()}, 500, ""))
            return
        stats.cases[mode] += 1
        stats.statuses[response.status_code] += 1
        for problem in judge(target, mode, case, response, before):
            stats.findings.append(Finding(label, mode, problem, request_record(mode, response),
                                          response.status_code, response.content.decode(errors="replace")))

    try:
        run()
    except hypothesis.errors.Unsatisfiable:  # nothing to negate: the operation takes no parameters and no body
        stats.unsatisfiable.add((label, generation_mode.value))


def fuzz_all(target: FuzzTarget, modes: Iterator[str] | list[str], *, max_examples: int,
             generation_modes: tuple[GenerationMode, ...] = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE),
             stats: FuzzStats | None = None, check_state: bool = True, seed: int = 0) -> FuzzStats:
    stats = stats or FuzzStats()
    for mode in modes:
        for operation in target.operations():
            for generation_mode in generation_modes:
                fuzz_operation(target, operation, mode, generation_mode, max_examples=max_examples, stats=stats,
                               check_state=check_state, seed=seed)
    return stats


def corpus_body(spec: dict[str, Any] | None) -> bytes | None:
    """A corpus entry's body: ``text`` (times ``repeat``) or ``hex``, optionally behind a safetensors length prefix."""
    if spec is None:
        return None
    data = bytes.fromhex(spec["hex"]) if "hex" in spec else (spec["text"] * spec.get("repeat", 1)).encode()
    if spec.get("as_safetensors_header"):
        data = struct.pack("<Q", len(data)) + data
    return data


def replay(target: FuzzTarget, entry: dict[str, Any]) -> list[str]:
    """Send one corpus request (placeholders such as ``{round_id}`` filled in) and judge the answer as the fuzzer
    does: no 5xx, the error schema, the role, and no stored change when refused."""
    from schemathesis.python import asgi

    body = corpus_body(entry.get("body"))
    headers = dict(entry.get("headers", {}))
    if entry.get("true_digest") and body is not None:
        headers[SHA256_HEADER] = hashlib.sha256(body).hexdigest()
    token = target.tokens[entry["auth"]]
    if token:
        headers["Authorization"] = f"Bearer {token}"
    before = target.snapshot()
    try:
        with asgi.get_client(target.app) as client:
            answer = client.request(entry["method"], entry["path"].format(**target.ids), data=body, headers=headers,
                                    timeout=30)
    except Exception as error:  # the in-process client re-raises what the app's 500 handler answered
        return [f"server error: {type(error).__name__}: {error}"]
    response = Response.from_requests(answer, verify=True)
    problems = []
    if response.status_code >= 500:
        problems.append("server error")
    if response.status_code >= 400:
        problem = error_body_problem(response)
        if problem:
            problems.append(problem)
        if target.snapshot() != before:
            problems.append("refused request changed stored state")
    if "expect_status" in entry and response.status_code != entry["expect_status"]:
        problems.append(f"status {response.status_code}, expected {entry['expect_status']}: {response.text[:200]}")
    return problems
