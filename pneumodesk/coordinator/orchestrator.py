"""Round orchestration: accept updates, decide when a round aggregates or fails, run FedAvg, publish the result.

Invariants:
- a node's update counts at most once per round and phase (database unique constraint; an identical retry gets a
  receipt with ``counted=False``, a different second update is refused);
- every state change happens in one transaction that re-reads the round under a row lock (``FOR UPDATE`` where the
  database has it, plus an in-process lock), so concurrent uploads and several workers cannot double-count;
- each counted update is also added at once to the round's running float64 sum (``running_sums``), so closing a
  round costs one division per weight however many nodes took part; the sums are only a cache: aggregation adds
  every counted update the sums lack from the blob store (after a restart, or when another worker received it), so
  after a restart a round left in ``aggregating`` is simply aggregated again; the model version is created at most
  once per round;
- once a round is finished its individual update blobs are deleted: what remains is the aggregate, its lineage
  (plan, round, number of contributors, total examples) and hashes, never a readable per-node update.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import threading
import time
from collections.abc import Callable

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from pneumodesk.federation.messages import RoundInfo, UploadReceipt
from pneumodesk.federation.plan import TrainingPlan
from pneumodesk.federation.tensors import check_compatible, sha256_hex, update_norm
from pneumodesk.federation.vocabulary import PlanStatus

from .blobs import BlobStore
from .db import ModelVersion, Plan, Round, Submission, get_row, utcnow
from .errors import Conflict, InvalidInput, NotFound
from .rounds import ACCEPTS_SUBMISSIONS, FINISHED, RoundPhase, RoundState, check_transition
from .running_sums import RoundSums, RunningSum
from .safetensors_io import tensor_views
from .views import round_info

log = logging.getLogger(__name__)
MAX_EXAMPLES = 1_000_000_000


class RoundOrchestrator:
    def __init__(self, sessions: sessionmaker, blobs: BlobStore, notify: Callable[[], None]) -> None:
        self._sessions = sessions
        self._blobs = blobs
        self._notify = notify
        self._lock = threading.RLock()
        self.lock = self._lock  # node decisions and plan publishing serialise with rounds under this lock
        self._aggregating: set[int] = set()
        self._signatures: dict[str, bytes] = {}
        self._sums = RoundSums()
        self._bases: dict[str, dict[str, np.ndarray]] = {}  # parsed models updates are checked against (≤ 2)
        # Guards ``_bases`` alone: a norm check never waits for another upload's commit or aggregation under
        # ``_lock``, and concurrent first uploads of a round load the model once, not once each.
        self._bases_lock = threading.Lock()

    # -- rounds -----------------------------------------------------------------------------------------------

    def open_round(self, session: Session, plan: Plan, number: int, model_version: int) -> Round:
        """Add the plan's round ``number`` starting from ``model_version`` (caller commits)."""
        spec = TrainingPlan.model_validate_json(plan.canonical_json)
        now = utcnow()
        # secure: see secure_rounds
        phase = RoundPhase.ADVERTISE_KEYS if spec.secure_aggregation else RoundPhase.PLAIN_INPUT
        round_ = Round(plan_sha256=plan.sha256, number=number, state=RoundState.OPEN.value,
                       phase=phase.value, model_version=model_version, opened=now,
                       deadline=now + dt.timedelta(seconds=spec.round_deadline_seconds), revision=0)
        session.add(round_)
        return round_

    def info(self, session: Session, round_: Round) -> RoundInfo:
        spec = TrainingPlan.model_validate_json(get_row(session, Plan, round_.plan_sha256).canonical_json)
        updates = session.scalar(
            select(func.count()).select_from(Submission).where(Submission.round_id == round_.id,
                                                               Submission.phase == round_.phase)
        )
        return round_info(round_, get_row(session, ModelVersion, round_.model_version), int(updates or 0),
                          spec.min_nodes)

    def current_round(self, session: Session, plan_sha256: str) -> Round | None:
        return session.scalars(
            select(Round).where(Round.plan_sha256 == plan_sha256).order_by(Round.number.desc()).limit(1)
        ).first()

    def _locked_round(self, session: Session, round_id: int) -> Round:
        round_ = session.scalars(select(Round).where(Round.id == round_id).with_for_update()).first()
        if round_ is None:
            raise NotFound(f"There is no round {round_id}.")
        return round_

    @staticmethod
    def _move(round_: Round, target: RoundState, reason: str | None = None) -> None:
        check_transition(round_.state, target)
        round_.state = target.value
        round_.revision += 1
        if reason:
            round_.reason = reason

    # -- uploads ----------------------------------------------------------------------------------------------

    def submit_update(self, round_id: int, node_id: str, received: bytes | bytearray | memoryview, examples: int,
                      claimed_sha256: str | None, *, received_sha256: str | None = None) -> UploadReceipt:
        """Check, store (durably) and count one update; ``data`` must not change while this runs.

        ``received_sha256`` is the digest of these very bytes when the caller hashed them as they arrived (the API
        does); otherwise they are hashed here."""
        data = received if isinstance(received, bytes) else memoryview(received)
        if not 1 <= examples <= MAX_EXAMPLES:
            raise InvalidInput(f"The example count must be between 1 and {MAX_EXAMPLES}.")
        digest = received_sha256 or sha256_hex(data)
        if claimed_sha256 is not None and claimed_sha256.lower() != digest:
            raise InvalidInput("The update does not match its X-Content-SHA256 header: it was damaged in transit.")
        with self._sessions() as session:
            round_ = session.get(Round, round_id)
            if round_ is None:
                raise NotFound(f"There is no round {round_id}.")
            existing = self._existing(session, round_id, round_.phase, node_id)
            if existing is not None:
                return self._replay(existing, digest, examples, round_)
            if RoundState(round_.state) not in ACCEPTS_SUBMISSIONS:
                raise Conflict(f"Round {round_.number} is {round_.state} and accepts no more updates.")
            if round_.phase != RoundPhase.PLAIN_INPUT:
                raise Conflict(f"Round {round_.number} uses secure aggregation: only masked inputs are accepted.")
            base_sha = get_row(session, ModelVersion, round_.model_version).sha256
            spec = TrainingPlan.model_validate_json(get_row(session, Plan, round_.plan_sha256).canonical_json)
        if examples > spec.max_examples_per_node:
            raise InvalidInput(f"The example count must be at most the plan's cap of {spec.max_examples_per_node}.")
        check_compatible(data, self._reference(base_sha))
        views = tensor_views(data)  # validates every tensor's byte range; no copy
        self._check_bounded(views, base_sha, spec.max_update_norm)
        self._blobs.put(data, digest)  # durable before it is counted; the running sum spares reading it back
        try:
            return self._record(round_id, node_id, digest, examples, views)
        except Conflict:
            self._forget_unreferenced(digest)
            raise

    def _record(self, round_id: int, node_id: str, digest: str, examples: int,
                views: dict[str, np.ndarray]) -> UploadReceipt:
        """Count a stored update (once) and move the round on; aggregates when this was the last one needed."""
        with self._lock, self._sessions() as session:
            round_ = self._locked_round(session, round_id)
            existing = self._existing(session, round_id, round_.phase, node_id)
            if existing is not None:
                return self._replay(existing, digest, examples, round_)
            if RoundState(round_.state) not in ACCEPTS_SUBMISSIONS:
                raise Conflict(f"Round {round_.number} is {round_.state} and accepts no more updates.")
            session.add(Submission(round_id=round_id, phase=round_.phase, node_id=node_id, blob_sha256=digest,
                                   examples=examples, received=utcnow()))
            session.flush()
            if round_.state == RoundState.OPEN:
                self._move(round_, RoundState.COLLECTING)
            else:
                round_.revision += 1
            info = self.info(session, round_)
            if info.updates_received >= info.min_nodes:
                self._move(round_, RoundState.AGGREGATING)
                self._aggregating.add(round_id)  # claimed before anyone can see the state: the sweeper keeps off
            try:
                session.commit()
            except BaseException:
                self._aggregating.discard(round_id)
                raise
            state, phase = round_.state, round_.phase
        try:
            running = self._sums.get(round_id) if phase == RoundPhase.PLAIN_INPUT else None
            if running is not None:
                with running.lock:
                    running.add(node_id, views, examples)
            self._notify()
        finally:
            if state == RoundState.AGGREGATING:
                state = self.aggregate(round_id, claimed=True)
        return UploadReceipt(round_id=round_id, update_sha256=digest, examples=examples, counted=True,
                             round_state=RoundState(state))

    def _forget_unreferenced(self, digest: str) -> None:
        with self._lock, self._sessions() as session:
            used = session.scalars(select(Submission.id).where(Submission.blob_sha256 == digest)).first()
            model = session.scalars(select(ModelVersion.version).where(ModelVersion.sha256 == digest)).first()
        if used is None and model is None:
            self._blobs.delete(digest)

    @staticmethod
    def _existing(session: Session, round_id: int, phase: str, node_id: str) -> Submission | None:
        return session.scalars(select(Submission).where(
            Submission.round_id == round_id, Submission.phase == phase, Submission.node_id == node_id)).first()

    @staticmethod
    def _replay(existing: Submission, digest: str, examples: int, round_: Round) -> UploadReceipt:
        if existing.blob_sha256 != digest or existing.examples != examples:
            raise Conflict("This node already sent a different update for this round; only the first one counts.")
        return UploadReceipt(round_id=round_.id, update_sha256=digest, examples=examples, counted=False,
                             round_state=RoundState(round_.state))

    def _check_bounded(self, views: dict[str, np.ndarray], base_sha256: str, max_norm: float) -> None:
        """Refuse an update with NaN or infinite values, or one farther than ``max_norm`` (L2) from the round's
        model: one node must not be able to take the global model anywhere it likes."""
        with self._bases_lock:
            base = self._bases.get(base_sha256)
            if base is None:  # the model versions nodes download are kept verified in memory: no re-read, re-hash
                base = tensor_views(self._blobs.get(base_sha256, cache=True))
                self._bases = {base_sha256: base, **dict(list(self._bases.items())[:1])}  # this round's, the last
        norm = update_norm(views, base)
        if not math.isfinite(norm):
            raise InvalidInput("The update holds NaN or infinite values; it cannot be aggregated.")
        if norm > max_norm:
            raise InvalidInput(f"The update is {norm:.4g} (L2) away from the round's model, more than the plan's "
                               f"bound of {max_norm:g}; nodes clip their updates to it.")

    def _reference(self, model_sha256: str) -> bytes:
        """The safetensors header of a model (cached): enough to check an update's tensor names and shapes."""
        if model_sha256 not in self._signatures:
            data = self._blobs.get(model_sha256)
            header_length = int.from_bytes(data[:8], "little")
            self._signatures[model_sha256] = bytes(data[: 8 + header_length])  # not a view: the model may go
        return self._signatures[model_sha256]

    # -- aggregation ------------------------------------------------------------------------------------------

    def aggregate(self, round_id: int, *, claimed: bool = False) -> str:
        """FedAvg of the round's updates → a new model version; returns the round's state afterwards.

        One thread per round at a time: ``claimed`` means the caller already holds the round's claim."""
        if not claimed:
            with self._lock:
                if round_id in self._aggregating:
                    return RoundState.AGGREGATING.value
                self._aggregating.add(round_id)
        try:
            return self._aggregate(round_id)
        finally:
            with self._lock:
                self._aggregating.discard(round_id)

    def _aggregate(self, round_id: int) -> str:
        with self._sessions() as session:
            round_ = session.get(Round, round_id)
            if round_.state != RoundState.AGGREGATING:
                return round_.state
            plan = session.get(Plan, round_.plan_sha256)
            parent = session.get(ModelVersion, round_.model_version)
            submissions = session.scalars(select(Submission).where(
                Submission.round_id == round_id, Submission.phase == RoundPhase.PLAIN_INPUT.value)).all()
            inputs = sorted((s.blob_sha256, s.node_id, s.examples) for s in submissions)
            number, plan_sha, parent_version, parent_card = round_.number, plan.sha256, parent.version, parent.card_json
            architecture = parent.architecture
        started = time.perf_counter()
        try:
            weights, total_examples = self._mean(round_id, inputs, architecture)
            weights_sha = self._blobs.put(weights, cache=True)  # every node downloads it next
        except Exception as error:  # a damaged blob or an impossible update: the round fails, the service lives
            log.error("Aggregation of round %s failed: %s", round_id, error)
            return self._finish_failed(round_id, f"aggregation failed: {error}")
        card = json.loads(parent_card)
        card.update(weights_sha256=weights_sha, created=utcnow().isoformat(), training={
            "federated": {"plan_sha256": plan_sha, "round": number, "parent_version": parent_version,
                          "contributors": len(inputs), "total_examples": total_examples}})
        with self._lock, self._sessions() as session:
            round_ = self._locked_round(session, round_id)
            if round_.state != RoundState.AGGREGATING:  # another worker finished it first
                return round_.state
            model = ModelVersion(sha256=weights_sha, architecture=architecture, card_json="{}",
                                 size_bytes=len(weights), created=utcnow(), parent_version=parent_version,
                                 plan_sha256=plan_sha, round_number=number, contributors=len(inputs),
                                 total_examples=total_examples)
            session.add(model)
            session.flush()
            card["version"] = f"federated-{model.version}"
            model.card_json = json.dumps(card, sort_keys=True)
            round_.result_version = model.version
            self._move(round_, RoundState.COMPLETE)
            self._next_round(session, round_, model.version)
            session.commit()
        self._sums.close(round_id)
        self._notify()
        self._scrub(round_id)
        log.info("Round %s of plan %s… complete: model version %s from %s updates, aggregated in %.3f s", number,
                 plan_sha[:12], model.version, len(inputs), time.perf_counter() - started)
        return RoundState.COMPLETE.value

    def _mean(self, round_id: int, inputs: list[tuple[str, str, int]], architecture: str) -> tuple[memoryview, int]:
        """The weighted mean of the counted ``inputs`` (blob sha, node, examples) as safetensors bytes.

        Starts from the running sum and adds, from the blob store (``get`` verifies each blob's hash), only the updates
        it lacks; refuses to use sums holding anything that was not counted.
        """
        running = self._sums.get(round_id) or RunningSum()
        counted = {node for _sha, node, _n in inputs}
        with running.lock:
            if not running.included <= counted:
                running = RunningSum()
            for blob_sha, node, examples in inputs:
                if node not in running.included:
                    running.add(node, tensor_views(self._blobs.get(blob_sha)), examples)
            return running.write({"architecture": architecture}), running.total_examples

    def _next_round(self, session: Session, finished: Round, model_version: int) -> None:
        plan = get_row(session, Plan, finished.plan_sha256)
        spec = TrainingPlan.model_validate_json(plan.canonical_json)
        if finished.number < spec.rounds:
            self.open_round(session, plan, finished.number + 1, model_version)
        else:
            plan.status = PlanStatus.FINISHED.value

    def _finish_failed(self, round_id: int, reason: str) -> str:
        with self._lock, self._sessions() as session:
            round_ = self._locked_round(session, round_id)
            if RoundState(round_.state) in FINISHED:
                return round_.state
            self._move(round_, RoundState.FAILED, reason)
            self._next_round(session, round_, round_.model_version)
            session.commit()
        self._sums.close(round_id)
        self._notify()
        self._scrub(round_id)
        return RoundState.FAILED.value

    def _scrub(self, round_id: int) -> None:
        """Delete a finished round's individual updates (kept hashes prove what was counted, nothing more)."""
        with self._sessions() as session:
            shas = session.scalars(select(Submission.blob_sha256).where(Submission.round_id == round_id)).all()
            keep = set(session.scalars(select(ModelVersion.sha256)).all())
        for sha in set(shas) - keep:
            self._blobs.delete(sha)

    # -- time -------------------------------------------------------------------------------------------------

    def sweep(self) -> None:
        """Resume interrupted aggregations and settle rounds past their deadline (at start, then periodically)."""
        now = utcnow()
        with self._sessions() as session:
            newest = session.scalar(select(func.max(Round.id))) or 0
            pending = session.scalars(select(Round).where(Round.state.in_(
                [RoundState.OPEN.value, RoundState.COLLECTING.value, RoundState.AGGREGATING.value]))).all()
            work = [(r.id, r.state, r.deadline, self.info(session, r)) for r in pending
                    if r.phase == RoundPhase.PLAIN_INPUT]  # secure rounds: SecureRounds.sweep
        self._sums.retain({r.id for r in pending}, newest)  # rounds another worker finished: drop their sums here
        for round_id, state, deadline, info in work:
            if state == RoundState.AGGREGATING:
                self.aggregate(round_id)
            elif deadline <= now:
                if info.updates_received >= info.min_nodes:
                    with self._lock, self._sessions() as session:
                        round_ = self._locked_round(session, round_id)
                        if RoundState(round_.state) in ACCEPTS_SUBMISSIONS:
                            self._move(round_, RoundState.AGGREGATING)
                            session.commit()
                    self.aggregate(round_id)
                else:
                    self._finish_failed(round_id, f"deadline passed with {info.updates_received} of "
                                                  f"{info.min_nodes} updates")
