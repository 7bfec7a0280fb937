"""The service layer: every operation of the coordinator, called by both the HTTP API and the operator CLI.

Invariants: callers pass already-authenticated identities (the API checks tokens through ``authenticate_*``, which
re-reads the database on every request so a revocation takes effect at once); secrets (passwords, enrolment codes,
tokens) never reach a log line; enrolment codes are stored only as their sha256. Every change an operator (or the
command line) makes, every login and every node enrolment is written to the append-only audit log in the same
transaction as the change (``actor`` names who acted; see ``audit``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets
import threading
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import delete, select

from pneumodesk.federation.errors import PlanError
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
    challenge_bytes,
)
from pneumodesk.federation.plan import TrainingPlan

from .audit import SYSTEM, AuditEntry, AuditLog
from .auth import ROLES, TokenAuthority, from_b64url, hash_password, verify_node_signature, verify_password
from .blobs import BlobStore
from .config import CoordinatorConfig, CoordinatorPaths
from .db import (
    Challenge,
    ModelVersion,
    Node,
    Operator,
    Plan,
    Round,
    make_engine,
    make_sessions,
    upgrade_database,
    utcnow,
)
from .db import EnrolmentCode as CodeRow
from .errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthorised
from .orchestrator import RoundOrchestrator
from .secure_rounds import SecureRounds
from .views import model_info, node_info, plan_summary

#: Unambiguous upper-case letters and digits (no 0/O, 1/I/L), so a code read over the phone is typed right.
_CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"


def new_enrolment_code(groups: int = 5, size: int = 5) -> str:
    """A one-time code like ``K7QM2-9XPDA-…``: 5×5 symbols ≈ 124 bits; never starts with ``-``, so a command line
    cannot mistake it for an option."""
    return "-".join("".join(secrets.choice(_CODE_ALPHABET) for _ in range(size)) for _ in range(groups))


class CoordinatorService:
    def __init__(self, paths: CoordinatorPaths, config: CoordinatorConfig, database_url: str | None = None) -> None:
        self.paths, self.config = paths, config
        self.engine = make_engine(database_url or config.resolved_database_url(paths))
        upgrade_database(self.engine)
        self.sessions = make_sessions(self.engine)
        self.blobs = BlobStore(paths.blobs)
        self.tokens = TokenAuthority(TokenAuthority.load_key(paths.token_key), config.issuer,
                                     config.node_audience, config.operator_audience)
        self._listeners: list[Callable[[], None]] = []
        self._listeners_lock = threading.Lock()
        self.rounds = RoundOrchestrator(self.sessions, self.blobs, self._notify)
        self.secure = SecureRounds.for_service(self)  # secure-aggregation phases of rounds (secure_rounds)
        self.audit = AuditLog(self.sessions)
        self._challenges_swept = 0.0

    @classmethod
    def open(cls, directory: Path, database_url: str | None = None) -> CoordinatorService:
        paths = CoordinatorPaths(Path(directory))
        return cls(paths, CoordinatorConfig.load(paths), database_url)

    def close(self) -> None:
        self.engine.dispose()

    # -- change notification (long polling) -------------------------------------------------------------------

    def add_listener(self, callback: Callable[[], None]) -> None:
        with self._listeners_lock:
            self._listeners.append(callback)

    def _notify(self) -> None:
        with self._listeners_lock:
            listeners = list(self._listeners)
        for callback in listeners:
            callback()

    # -- operators --------------------------------------------------------------------------------------------

    def create_operator(self, username: str, password: str, role: str = "operator", *, actor: str = SYSTEM) -> None:
        if role not in ROLES:
            raise InvalidInput(f"Unknown role {role!r}; roles are {', '.join(ROLES)}.")
        if not 1 <= len(username) <= 64 or not username.isprintable() or username != username.strip():
            raise InvalidInput("Operator user names have 1 to 64 printable characters, without surrounding spaces.")
        with self.sessions() as session:
            if session.scalars(select(Operator).where(Operator.username == username)).first():
                raise Conflict(f"Operator {username!r} already exists.")
            session.add(Operator(username=username, password_hash=hash_password(password), role=role, active=True,
                                 created=utcnow()))
            self.audit.add(session, actor, "operator.create", username, {"role": role})
            session.commit()

    def set_operator_active(self, username: str, active: bool, *, actor: str = SYSTEM) -> None:
        """Disable (or enable again) an operator account; a disabled account's tokens stop working at once."""
        with self.sessions() as session:
            operator = session.scalars(select(Operator).where(Operator.username == username)).first()
            if operator is None:
                raise NotFound(f"There is no operator {username!r}.")
            operator.active = active
            self.audit.add(session, actor, "operator.enable" if active else "operator.disable", username)
            session.commit()

    def list_operators(self) -> list[dict[str, object]]:
        with self.sessions() as session:
            return [{"username": o.username, "role": o.role, "active": o.active, "created": o.created.isoformat()}
                    for o in session.scalars(select(Operator).order_by(Operator.id))]

    def login(self, username: str, password: str, *, source: str | None = None) -> TokenResponse:
        """A token for a valid, active account. Audited either way (the attempted name only if it is an account)."""
        with self.sessions() as session:
            operator = session.scalars(select(Operator).where(Operator.username == username)).first()
        valid = verify_password(operator.password_hash if operator else None, password)
        details = {"source": source} if source else None
        if not valid or operator is None or not operator.active:
            self.audit.append("anonymous", "operator.login_failed", username if operator else None, details)
            raise Unauthorised("Wrong user name or password.")
        seconds = self.config.operator_token_seconds
        token = self.tokens.issue("operator", f"operator:{username}", seconds, role=operator.role)
        self.audit.append(username, "operator.login", username, details)
        return TokenResponse(access_token=token, expires_in=seconds)

    def read_audit(self, limit: int | None = None, after_id: int = 0) -> list[AuditEntry]:
        return self.audit.read(limit, after_id)

    def authenticate_operator(self, token: str, need: str = "viewer") -> str:
        """The operator's user name, if the token is valid and the account (still) has the role ``need``."""
        claims = self.tokens.verify(token, "operator")
        username = claims.subject.removeprefix("operator:")
        with self.sessions() as session:
            operator = session.scalars(select(Operator).where(Operator.username == username)).first()
        if operator is None or not operator.active:
            raise Unauthorised("This operator account no longer exists or is disabled.")
        if need == "operator" and operator.role != "operator":
            raise Forbidden("This action needs the operator role; your account is a viewer.")
        return username

    # -- enrolment and node identity --------------------------------------------------------------------------

    def create_enrolment_code(self, hours: float | None = None, *, actor: str = SYSTEM) -> EnrolmentCode:
        code = new_enrolment_code()
        expires = utcnow() + dt.timedelta(hours=hours or self.config.enrolment_code_hours)
        with self.sessions() as session:
            row = CodeRow(code_sha256=hashlib.sha256(code.encode()).hexdigest(), expires=expires, created=utcnow())
            session.add(row)
            session.flush()
            self.audit.add(session, actor, "enrolment_code.create", f"code #{row.id}",
                           {"expires": expires.isoformat()})
            session.commit()
        return EnrolmentCode(code=code, expires=expires.isoformat())

    def enrol(self, code: str, name: str, public_key_b64: str) -> NodeInfo:
        public_key = from_b64url(public_key_b64)
        if len(public_key) != 32:
            raise InvalidInput("The node public key must be a raw 32-byte Ed25519 key, base64url-encoded.")
        with self.rounds._lock, self.sessions() as session:
            row = session.scalars(select(CodeRow).where(
                CodeRow.code_sha256 == hashlib.sha256(code.encode()).hexdigest()).with_for_update()).first()
            if row is None or row.used is not None or row.expires <= utcnow():
                raise Forbidden(
                    "The enrolment code is unknown, already used or expired; ask the operator for a new one."
                )
            if session.scalars(select(Node).where(Node.public_key == public_key)).first():
                raise Conflict("A node with this public key is already enrolled.")
            row.used = utcnow()
            node = Node(id=f"node-{secrets.token_hex(8)}", name=name, public_key=public_key, status="pending",
                        created=utcnow())
            session.add(node)
            self.audit.add(session, f"node:{node.id}", "node.enrol", node.id,
                           {"name": name, "public_key_sha256": hashlib.sha256(public_key).hexdigest(),
                            "code": f"code #{row.id}"})
            session.commit()
            return node_info(node)

    def list_nodes(self) -> list[NodeInfo]:
        with self.sessions() as session:
            return [node_info(n) for n in session.scalars(select(Node).order_by(Node.created)).all()]

    def _decide(self, node_id: str, status: str, actor: str) -> NodeInfo:
        with self.rounds._lock, self.sessions() as session:
            node = session.get(Node, node_id)
            if node is None:
                raise NotFound(f"There is no node {node_id!r}.")
            if node.status == "revoked" and status == "approved":
                raise Conflict("A revoked node cannot be approved again; it must enrol anew with a new code.")
            node.status, node.decided = status, utcnow()
            self.audit.add(session, actor, "node.approve" if status == "approved" else "node.revoke", node_id,
                           {"name": node.name})
            session.commit()
            return node_info(node)

    def approve_node(self, node_id: str, *, actor: str = SYSTEM) -> NodeInfo:
        return self._decide(node_id, "approved", actor)

    def revoke_node(self, node_id: str, *, actor: str = SYSTEM) -> NodeInfo:
        return self._decide(node_id, "revoked", actor)

    def new_challenge(self, node_id: str) -> ChallengeResponse:
        nonce = secrets.token_urlsafe(24)
        expires = utcnow() + dt.timedelta(seconds=self.config.challenge_seconds)
        with self.sessions() as session:
            node = session.get(Node, node_id)
            if node is None or node.status == "revoked":
                raise NotFound("There is no enrolled node with this id.")
            session.add(Challenge(nonce=nonce, node_id=node_id, expires=expires))
            session.commit()
        return ChallengeResponse(nonce=nonce, expires=expires.isoformat(), audience=self.config.node_audience)

    def node_token(self, node_id: str, nonce: str, signature_b64: str) -> TokenResponse:
        """Exchange a signed, unused, unexpired challenge for a short-lived node token."""
        signature = from_b64url(signature_b64)
        with self.sessions() as session:
            challenge = session.get(Challenge, nonce)
            if challenge is not None:
                session.delete(challenge)  # single use, whatever happens next
                session.commit()
            node = session.get(Node, node_id)
        if challenge is None or challenge.node_id != node_id or challenge.expires <= utcnow() or node is None:
            raise Unauthorised("The challenge is unknown, used or expired; request a new one.")
        message = challenge_bytes(self.config.node_audience, node_id, nonce)
        if not verify_node_signature(node.public_key, message, signature):
            raise Unauthorised("The challenge signature does not match this node's enrolled key.")
        self._require_approved(node)
        seconds = self.config.node_token_seconds
        token = self.tokens.issue("node", f"node:{node_id}", seconds, node_id=node_id)
        return TokenResponse(access_token=token, expires_in=seconds)

    @staticmethod
    def _require_approved(node: Node | None) -> None:
        if node is None:
            raise Unauthorised("This node is not enrolled with this coordinator.")
        if node.status == "revoked":
            raise Forbidden("This node's enrolment was revoked by the federation operator.")
        if node.status != "approved":
            raise Forbidden("This node is awaiting approval by the federation operator.")

    def authenticate_node(self, token: str) -> str:
        """The node id, if the token is valid and the node is approved right now (revocation applies at once)."""
        claims = self.tokens.verify(token, "node")
        with self.sessions() as session:
            node = session.get(Node, claims.node_id)
        self._require_approved(node)
        return claims.node_id

    def authenticate_any(self, token: str) -> str:
        """A node id or an operator name (viewer role suffices), for endpoints both may read.

        Each attempt verifies the token fully; nothing is read from a token before its signature is checked.
        """
        try:
            return self.authenticate_operator(token, "viewer")
        except Unauthorised:
            return self.authenticate_node(token)

    # -- models -----------------------------------------------------------------------------------------------

    def import_model(self, bundle_dir: Path, *, actor: str = SYSTEM) -> ModelVersionInfo:
        """Add a verified model bundle as a new root model version (e.g. the bundled default model at init)."""
        from pneumodesk.model import WEIGHTS_FILE, ModelError, load_bundle  # torch, only when needed

        try:
            bundle = load_bundle(bundle_dir)
        except ModelError as error:
            raise InvalidInput(str(error)) from None
        weights = (Path(bundle_dir) / WEIGHTS_FILE).read_bytes()
        sha = self.blobs.put(weights)
        with self.sessions() as session:
            model = ModelVersion(sha256=sha, architecture=bundle.card.architecture,
                                 card_json=json.dumps(bundle.card.to_json_dict(), sort_keys=True),
                                 size_bytes=len(weights), created=utcnow())
            session.add(model)
            session.flush()
            self.audit.add(session, actor, "model.import", f"version {model.version}",
                           {"sha256": sha, "architecture": model.architecture})
            session.commit()
            return model_info(model)

    def list_models(self) -> list[ModelVersionInfo]:
        with self.sessions() as session:
            return [model_info(m) for m in session.scalars(select(ModelVersion).order_by(ModelVersion.version))]

    def model_weights(self, version: int) -> tuple[bytes | memoryview, str]:
        with self.sessions() as session:
            model = session.get(ModelVersion, version)
            if model is None:
                raise NotFound(f"There is no model version {version}.")
            sha = model.sha256
        return self.blobs.get(sha, cache=True), sha

    def export_model(self, version: int, out: Path, *, actor: str = SYSTEM) -> Path:
        """Write model version ``version`` as a bundle folder (weights + card), then verify it loads."""
        from pneumodesk.model import CARD_FILE, WEIGHTS_FILE, ModelError, load_bundle  # torch, only when needed

        weights, _sha = self.model_weights(version)
        with self.sessions() as session:
            card = session.get(ModelVersion, version).card_json
        out = Path(out)
        if out.exists() and any(out.iterdir()):
            raise Conflict(f"{out} exists and is not empty; choose a new folder.")
        out.mkdir(parents=True, exist_ok=True)
        (out / WEIGHTS_FILE).write_bytes(weights)
        (out / CARD_FILE).write_text(json.dumps(json.loads(card), indent=2) + "\n", encoding="utf-8")
        try:
            load_bundle(out)
        except ModelError as error:
            raise InvalidInput(f"The exported bundle does not load: {error}") from None
        self.audit.append(actor, "model.export", f"version {version}", {"out": str(out.resolve())})
        return out

    # -- plans ------------------------------------------------------------------------------------------------

    def publish_plan(self, plan_json: bytes | str, *, actor: str = SYSTEM) -> PlanSummary:
        """Validate a plan, store it under its hash and open its first round."""
        from pneumodesk.model import architecture_names  # torch, only when needed

        plan = TrainingPlan.from_json_bytes(plan_json)
        if plan.secure_aggregation and plan.min_nodes < 2:
            raise PlanError("min_nodes must be at least 2 with secure aggregation: the sum of one update is that "
                            "update.")
        if plan.secure_aggregation:  # QuantisationError (422) unless the sum fits a 32-bit word
            from pneumodesk.federation.secagg import QuantisationSpec

            QuantisationSpec.for_round(plan.min_nodes, plan.secure_aggregation_clip,
                                       plan.secure_aggregation_max_examples)
        if plan.architecture not in architecture_names():
            raise PlanError(f"Unknown architecture {plan.architecture!r}; known: {', '.join(architecture_names())}.")
        sha = plan.sha256
        with self.rounds._lock, self.sessions() as session:
            base = session.scalars(select(ModelVersion).where(ModelVersion.sha256 == plan.base_model_sha256)
                                   .order_by(ModelVersion.version.desc())).first()
            if base is None:
                raise PlanError("The plan's base_model_sha256 is not a model version of this coordinator "
                                "(see `models list`).")
            card = json.loads(base.card_json)
            if base.architecture != plan.architecture or card.get("input_size") != plan.input_size:
                raise PlanError(f"The base model is {base.architecture} at {card.get('input_size')} px; the plan "
                                f"says {plan.architecture} at {plan.input_size} px.")
            if session.get(Plan, sha) is not None:
                raise Conflict(f"Plan {sha[:12]}… is already published.")
            row = Plan(sha256=sha, name=plan.name, canonical_json=plan.canonical_json().decode(),
                       base_version=base.version, status="active", published=utcnow())
            session.add(row)
            session.flush()
            self.rounds.open_round(session, row, 1, base.version)
            self.audit.add(session, actor, "plan.publish", sha, {"name": plan.name, "base_version": base.version,
                                                                 "rounds": plan.rounds, "min_nodes": plan.min_nodes})
            session.commit()
            summary = plan_summary(row)
        self._notify()
        return summary

    def list_plans(self) -> list[PlanSummary]:
        with self.sessions() as session:
            return [plan_summary(p) for p in session.scalars(select(Plan).order_by(Plan.published))]

    def get_plan(self, sha: str) -> PlanSummary:
        with self.sessions() as session:
            plan = session.get(Plan, sha)
            if plan is None:
                raise NotFound("There is no plan with this sha256.")
            return plan_summary(plan)

    # -- rounds -----------------------------------------------------------------------------------------------

    def plan_state(self, sha: str) -> PlanWait:
        """The plan's current round (``None`` once finished); ``changed`` is left False for the caller to set."""
        with self.sessions() as session:
            plan = session.get(Plan, sha)
            if plan is None:
                raise NotFound("There is no plan with this sha256.")
            round_ = self.rounds.current_round(session, sha)
            info = None if plan.status == "finished" or round_ is None else self.rounds.info(session, round_)
            return PlanWait(changed=False, plan_status=plan.status, round=info)

    def join(self, sha: str, node_id: str) -> RoundInfo:
        """The plan's round that accepts this node's update now, or ``Conflict`` telling it to wait."""
        state = self.plan_state(sha)
        if state.round is None:
            raise Conflict("This plan is finished; there is no round to join.")
        if state.round.state not in ("open", "collecting"):
            raise Conflict(f"Round {state.round.number} is {state.round.state}; wait for the next round.")
        if state.round.phase not in ("plain_input", "advertise_keys"):  # secure round: keys already exchanged
            raise Conflict(f"Round {state.round.number} has closed its key exchange; wait for the next round.")
        return state.round

    def round_status(self, round_id: int) -> RoundInfo:
        with self.sessions() as session:
            round_ = session.get(Round, round_id)
            if round_ is None:
                raise NotFound(f"There is no round {round_id}.")
            return self.rounds.info(session, round_)

    def all_rounds(self) -> list[RoundInfo]:
        with self.sessions() as session:
            return [self.rounds.info(session, r) for r in session.scalars(select(Round).order_by(Round.id))]

    def submit_update(self, round_id: int, node_id: str, data: bytes | bytearray | memoryview, examples: int,
                      claimed_sha256: str | None, *, received_sha256: str | None = None) -> UploadReceipt:
        return self.rounds.submit_update(round_id, node_id, data, examples, claimed_sha256,
                                         received_sha256=received_sha256)

    def sweep(self) -> None:
        """Settle rounds (deadlines, interrupted aggregations) and drop expired challenges."""
        self.rounds.sweep()
        self.secure.sweep()
        if time.monotonic() - self._challenges_swept > 60:
            self._challenges_swept = time.monotonic()
            with self.sessions() as session:
                session.execute(delete(Challenge).where(Challenge.expires <= utcnow()))
                session.commit()

