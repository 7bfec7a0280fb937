"""``CoordinatorService``: the one front door to the coordinator, called by both the HTTP API and the operator CLI.

It wires the per-area services (``services``: operators, enrolment, models, plans, rounds) to one database, blob
store, token authority and audit log, and keeps the flat method names callers use, each delegating to its area.

Invariants: callers pass already-authenticated identities (the API checks tokens through ``authenticate_*``, which
re-reads the database on every request so a revocation takes effect at once); secrets (passwords, enrolment codes,
tokens) never reach a log line; enrolment codes are stored only as their sha256. Every change an operator (or the
command line) makes, every login and every node enrolment is written to the append-only audit log in the same
transaction as the change (``actor`` names who acted; see ``audit``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from pneumodesk.federation.messages import (
    ChallengeResponse,
    EnrolmentCode,
    ModelVersionInfo,
    NodeInfo,
    PlanSummary,
    PlanWait,
    RoundInfo,
    TokenResponse,
    UploadReceipt,
)

from .audit import SYSTEM, AuditEntry, AuditLog
from .auth import TokenAuthority
from .blobs import BlobStore, Weights
from .config import CoordinatorConfig, CoordinatorPaths
from .db import make_engine, make_sessions, upgrade_database
from .orchestrator import RoundOrchestrator
from .secure_rounds import SecureRounds, message_store
from .services import EnrolmentService, ModelService, OperatorService, PlanService, RoundService, new_enrolment_code
from .wakeups import PostgresWakeups, supports_notify

__all__ = ["CoordinatorService", "new_enrolment_code"]


class ChangeListeners:
    """Callbacks told about every change nodes may be waiting for (long polls); safe to use from any thread."""

    def __init__(self) -> None:
        self._callbacks: list[Callable[[], None]] = []
        self._lock = threading.Lock()

    def add(self, callback: Callable[[], None]) -> None:
        with self._lock:
            self._callbacks.append(callback)

    def notify(self) -> None:
        with self._lock:
            callbacks = list(self._callbacks)
        for callback in callbacks:
            callback()


class CoordinatorService:
    def __init__(self, paths: CoordinatorPaths, config: CoordinatorConfig, database_url: str | None = None) -> None:
        self.paths, self.config = paths, config
        self.engine = make_engine(database_url or config.resolved_database_url(paths))
        upgrade_database(self.engine)
        self.sessions = make_sessions(self.engine)
        self.blobs = BlobStore(paths.blobs)
        self.tokens = TokenAuthority(TokenAuthority.load_key(paths.token_key), config.issuer,
                                     config.node_audience, config.operator_audience)
        self.audit = AuditLog(self.sessions)
        self._listeners = ChangeListeners()
        # On PostgreSQL every change is announced to every process (other workers, the CLI's changes to them).
        self._wakeups = PostgresWakeups(self.engine, self._listeners.notify) if supports_notify(self.engine) else None
        self.orchestrator = RoundOrchestrator(self.sessions, self.blobs, self._notify)
        self.secure = SecureRounds(self.sessions, self.blobs, message_store(paths.root / "secagg"),
                                   config.node_audience, self.orchestrator.open_round, self._notify)
        self.operators = OperatorService(self.sessions, self.audit, self.tokens, config)
        self.enrolment = EnrolmentService(self.sessions, self.audit, self.tokens, config, self.orchestrator.lock)
        self.models = ModelService(self.sessions, self.audit, self.blobs)
        self.plans = PlanService(self.sessions, self.audit, self.orchestrator, self._notify)
        self.rounds = RoundService(self.sessions, self.orchestrator, self.secure)

    @classmethod
    def open(cls, directory: Path, database_url: str | None = None) -> CoordinatorService:
        paths = CoordinatorPaths(Path(directory))
        return cls(paths, CoordinatorConfig.load(paths), database_url)

    def database_ready(self) -> bool:
        """Whether the database answers a query now (readiness)."""
        try:
            with self.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
            return True
        except SQLAlchemyError:
            return False

    def close(self) -> None:
        self.stop_listening()
        self.engine.dispose()

    # -- change notification (long polling) -------------------------------------------------------------------

    def add_listener(self, callback: Callable[[], None]) -> None:
        self._listeners.add(callback)

    def start_listening(self) -> None:
        """Wake this process's long polls for changes other processes commit (PostgreSQL; a no-op on SQLite, where
        they are seen by the long polls' periodic re-read)."""
        if self._wakeups is not None:
            self._wakeups.start()

    def stop_listening(self) -> None:
        if self._wakeups is not None:
            self._wakeups.stop()

    def _notify(self) -> None:
        self._listeners.notify()
        if self._wakeups is not None:
            self._wakeups.announce()

    # -- operators --------------------------------------------------------------------------------------------

    def create_operator(self, username: str, password: str, role: str = "operator", *, actor: str = SYSTEM) -> None:
        self.operators.create(username, password, role, actor=actor)

    def set_operator_active(self, username: str, active: bool, *, actor: str = SYSTEM) -> None:
        self.operators.set_active(username, active, actor=actor)

    def list_operators(self) -> list[dict[str, object]]:
        return self.operators.list()

    def login(self, username: str, password: str, *, source: str | None = None) -> TokenResponse:
        return self.operators.login(username, password, source=source)

    def authenticate_operator(self, token: str, need: str = "viewer") -> str:
        return self.operators.authenticate(token, need)

    def read_audit(self, limit: int | None = None, after_id: int = 0) -> list[AuditEntry]:
        return self.audit.read(limit, after_id)

    # -- enrolment and node identity --------------------------------------------------------------------------

    def create_enrolment_code(self, hours: float | None = None, *, actor: str = SYSTEM) -> EnrolmentCode:
        return self.enrolment.create_code(hours, actor=actor)

    def enrol(self, code: str, name: str, public_key_b64: str) -> NodeInfo:
        return self.enrolment.enrol(code, name, public_key_b64)

    def list_nodes(self) -> list[NodeInfo]:
        return self.enrolment.list_nodes()

    def approve_node(self, node_id: str, *, actor: str = SYSTEM) -> NodeInfo:
        return self.enrolment.approve(node_id, actor=actor)

    def revoke_node(self, node_id: str, *, actor: str = SYSTEM) -> NodeInfo:
        return self.enrolment.revoke(node_id, actor=actor)

    def new_challenge(self, node_id: str) -> ChallengeResponse:
        return self.enrolment.new_challenge(node_id)

    def node_token(self, node_id: str, nonce: str, signature_b64: str) -> TokenResponse:
        return self.enrolment.node_token(node_id, nonce, signature_b64)

    def authenticate_node(self, token: str) -> str:
        return self.enrolment.authenticate(token)

    def authenticate_any(self, token: str) -> str:
        """A node id or an operator name (viewer role suffices), for endpoints both may read.

        The token is verified fully (one signature check) before its kind decides which account is checked;
        nothing is read from a token before its signature is checked.
        """
        claims = self.tokens.verify_any(token)
        if claims.kind == "operator":
            return self.operators.authorise(claims, "viewer")
        return self.enrolment.authorise(claims)

    # -- models -----------------------------------------------------------------------------------------------

    def import_model(self, bundle_dir: Path, *, actor: str = SYSTEM) -> ModelVersionInfo:
        return self.models.import_bundle(bundle_dir, actor=actor)

    def list_models(self) -> list[ModelVersionInfo]:
        return self.models.list()

    def model_weights(self, version: int) -> tuple[Weights, str]:
        return self.models.weights(version)

    def export_model(self, version: int, out: Path, *, actor: str = SYSTEM) -> Path:
        return self.models.export(version, out, actor=actor)

    # -- plans ------------------------------------------------------------------------------------------------

    def publish_plan(self, plan_json: bytes | str, *, actor: str = SYSTEM) -> PlanSummary:
        return self.plans.publish(plan_json, actor=actor)

    def list_plans(self) -> list[PlanSummary]:
        return self.plans.list()

    def get_plan(self, sha: str) -> PlanSummary:
        return self.plans.get(sha)

    # -- rounds -----------------------------------------------------------------------------------------------

    def plan_state(self, sha: str) -> PlanWait:
        return self.rounds.plan_state(sha)

    def join(self, sha: str, node_id: str) -> RoundInfo:
        return self.rounds.join(sha, node_id)

    def round_status(self, round_id: int) -> RoundInfo:
        return self.rounds.status(round_id)

    def all_rounds(self) -> list[RoundInfo]:
        return self.rounds.all()

    def submit_update(self, round_id: int, node_id: str, data: bytes | bytearray | memoryview, examples: int,
                      claimed_sha256: str | None, *, received_sha256: str | None = None) -> UploadReceipt:
        return self.rounds.submit_update(round_id, node_id, data, examples, claimed_sha256,
                                                received_sha256=received_sha256)

    def sweep(self) -> None:
        """Settle rounds (deadlines, interrupted aggregations) and drop expired challenges."""
        self.rounds.sweep()
        self.enrolment.sweep_challenges()
