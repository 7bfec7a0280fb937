"""Secure-aggregation rounds (Bonawitz et al.): the coordinator relays keys and shares and learns only the sum.

A round of a plan with ``secure_aggregation`` opens in phase ``advertise_keys`` (``RoundOrchestrator.open_round``)
and stays ``open``/``collecting`` while its ``phase`` moves advertise_keys → share_keys → masked_input →
consistency_check → unmasking;
then it is ``aggregating`` for as long as unmasking and writing the model take, and ``complete`` (or ``failed``).
Each phase change bumps the round's ``revision``, so nodes see it in their long poll; ``Round.deadline`` is the
current phase's deadline (advertising: the plan's round deadline, which covers local training; later phases:
``secure_phase_seconds`` each).

When a phase closes:
- advertise_keys: as soon as ``min_nodes`` nodes advertised keys (like a plain round with ``min_nodes`` updates);
  at the deadline with fewer the round fails. The roster is exactly those nodes; the fixed-point format is chosen
  for that many (``QuantisationSpec.for_round`` with the plan's clip and example cap);
- share_keys: when every roster node sent its shares, or at the deadline (≥ t needed);
- masked_input: when every node that shared sent a masked input, or at the deadline (≥ t needed);
- consistency_check: when every node of U3 (masked input in) signed U3, or — since a node that vanished after its
  masked input never signs — ``CONSISTENCY_GRACE_SECONDS`` after the phase opened once ≥ t signed (else the rest of
  the phase's time, then failure); the unmasking request carries the signatures, and a node answers only with t
  valid ones on the U3 it signed itself;
- unmasking: as soon as t survivors answered (or at the deadline, when fewer than t is a failure).
The decoded mean of the survivors' deltas is added to the round's model: that is the new model version, with the
same lineage as a plain round (counts only, never who sent what).

Invariants:
- every accepted message is stored durably (raw bytes in a ``ContentStore``, a ``Submission`` row per round, phase
  and node: a retry counts once, a different second message is refused) *before* it is counted, so a restarted
  coordinator rebuilds the ``SecAggServer`` by replaying the stored messages in order (its ``receive_*`` and
  ``close_*`` are deterministic); a process that has not seen every stored message (another worker, a restart)
  rebuilds the same way before acting;
- the coordinator holds masked inputs only, never an unmasked individual update; once the round is finished every
  stored message of it is deleted; with fewer than t survivors the round fails and nothing is revealed.

Several workers: every request and sweep acts under the round's row lock (``SELECT … FOR UPDATE`` on PostgreSQL),
rebuilds this process's view when the database holds messages or a phase it has not seen, and keeps nothing only in
memory that a decision depends on (the consistency phase's one extension is ``Round.phase_extended``); so any
worker may take any message, and exactly one closes each phase. The in-process lock only serialises this process's
threads.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import numpy as np
from pydantic import BaseModel, ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from pneumodesk.federation.plan import TrainingPlan
from pneumodesk.federation.secagg import (
    AggregateResult,
    ConsistencySignature,
    KeyAdvertisement,
    MaskedInput,
    ProtocolViolation,
    QuantisationSpec,
    SecAggError,
    SecAggServer,
    ShareDelivery,
    ShareKeysMessage,
    SurvivorList,
    TooFewSurvivors,
    UnmaskRequest,
    UnmaskResponse,
)
from pneumodesk.federation.secagg.keys import verify_advertisement
from pneumodesk.federation.secagg.vector import flatten_state
from pneumodesk.federation.secagg.wire import SecureReceipt, SecureRoster, round_key
from pneumodesk.federation.tensors import sha256_hex
from pneumodesk.federation.vocabulary import PlanStatus

from .blobs import BlobStore
from .content_store import Bytes, ContentStore, FileContentStore
from .db import ModelVersion, Node, Plan, Round, Submission, get_row, utcnow
from .errors import Conflict, Forbidden, InvalidInput, NotFound
from .rounds import ACCEPTS_SUBMISSIONS, FINISHED, PHASES_SECURE, RoundPhase, RoundState, check_transition
from .safetensors_io import tensor_views, write_safetensors

log = logging.getLogger(__name__)
# How long the consistency phase waits for signatures beyond the first t: a node that is still there signs as soon as
# its long poll shows the phase; one that vanished after its masked input never will (its input still counts).
CONSISTENCY_GRACE_SECONDS = 10
M = TypeVar("M", bound=BaseModel)


def message_store(root: Path) -> FileContentStore:
    """Where a coordinator keeps secure-aggregation messages: by sha256, written atomically, re-hashed on read."""
    return FileContentStore(root, noun="Stored message", missing="A stored secure-aggregation message is missing.")


@dataclass
class _Live:
    """What this process knows of one round: the advertisements and, once advertising closed, the server."""

    phase: str
    seen: int  # stored messages replayed or received; a different count in the database means: rebuild
    advertisements: dict[str, KeyAdvertisement] = field(default_factory=dict)
    server: SecAggServer | None = None


def _parse(model: type[M], body: bytes) -> M:
    try:
        return model.model_validate_json(body)
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in error.errors()[:5])
        raise InvalidInput(f"The {model.__name__} is not valid: {problems}.") from None


class SecureRounds:
    """The coordinator side of secure-aggregation rounds (see the module docstring). Thread-safe."""

    def __init__(self, sessions: sessionmaker, blobs: BlobStore, store: ContentStore, audience: str,
                 open_round: Callable[[Session, Plan, int, int], Round], notify: Callable[[], None]) -> None:
        self._sessions, self._blobs, self._store = sessions, blobs, store
        self._audience, self._open_round, self._notify = audience, open_round, notify
        self._lock = threading.RLock()
        self._live: dict[int, _Live] = {}
        self._lengths: dict[str, int] = {}

    # -- node messages --------------------------------------------------------------------------------------------

    def advertise(self, round_id: int, node_id: str, body: bytes) -> SecureReceipt:
        message = _parse(KeyAdvertisement, body)
        if message.node_id != node_id:
            raise Forbidden("A node may only advertise its own keys.")

        def accept(session: Session, round_: Round, live: _Live) -> None:
            identity = get_row(session, Node, node_id)
            try:
                verify_advertisement(message, identity.public_key, self._key(round_))
            except SecAggError as error:
                raise InvalidInput(str(error)) from None
            live.advertisements[node_id] = message

        return self._receive(round_id, node_id, RoundPhase.ADVERTISE_KEYS, body, accept)

    def shares(self, round_id: int, node_id: str, body: bytes) -> SecureReceipt:
        message = _parse(ShareKeysMessage, body)
        if message.sender != node_id:
            raise Forbidden("A node may only send its own shares.")
        return self._receive(round_id, node_id, RoundPhase.SHARE_KEYS, body,
                             lambda _s, _r, live: self._server(live).receive_shares(message))

    def masked_input(self, round_id: int, node_id: str, received: Bytes, claimed_sha256: str | None, *,
                     received_sha256: str | None = None) -> SecureReceipt:
        body = received if isinstance(received, bytes) else memoryview(received)
        digest = received_sha256 or sha256_hex(body)
        if claimed_sha256 is not None and claimed_sha256.lower() != digest:
            raise InvalidInput("The masked input does not match its X-Content-SHA256 header: it was damaged in "
                               "transit.")
        try:
            message = MaskedInput.from_bytes(body)
        except ProtocolViolation as error:
            raise InvalidInput(str(error)) from None
        if message.node_id != node_id:
            raise Forbidden("A node may only send its own masked input.")
        words = hashlib.sha256(np.ascontiguousarray(message.words).data.cast("B")).digest()
        return self._receive(round_id, node_id, RoundPhase.MASKED_INPUT, body,
                             lambda _s, _r, live: self._server(live).receive_masked_input(message, words), digest,
                             prestore=True)

    def consistency(self, round_id: int, node_id: str, body: bytes) -> SecureReceipt:
        message = _parse(ConsistencySignature, body)
        if message.node_id != node_id:
            raise Forbidden("A node may only send its own signature of the survivors.")
        return self._receive(round_id, node_id, RoundPhase.CONSISTENCY_CHECK, body,
                             lambda _s, _r, live: self._server(live).receive_signature(message))

    def unmask(self, round_id: int, node_id: str, body: bytes) -> SecureReceipt:
        message = _parse(UnmaskResponse, body)
        if message.sender != node_id:
            raise Forbidden("A node may only send its own unmasking shares.")
        return self._receive(round_id, node_id, RoundPhase.UNMASKING, body,
                             lambda _s, _r, live: self._server(live).receive_unmask(message))

    # -- what nodes fetch -----------------------------------------------------------------------------------------

    def roster(self, round_id: int, node_id: str) -> SecureRoster:
        with self._lock, self._sessions() as session:
            _round, live = self._readable(session, round_id, RoundPhase.SHARE_KEYS)
            roster = self._server(live).roster
            assert roster is not None
            if node_id not in roster.node_ids:
                raise Conflict("This node did not advertise keys in time and is not part of this round.")
            keys = {node: get_row(session, Node, node).public_key for node in roster.node_ids}
            return SecureRoster(roster=roster, identity_keys=keys)

    def delivery(self, round_id: int, node_id: str) -> ShareDelivery:
        with self._lock, self._sessions() as session:
            _round, live = self._readable(session, round_id, RoundPhase.MASKED_INPUT)
            try:
                return self._server(live).delivery_for(node_id)
            except ProtocolViolation as error:
                raise Conflict(str(error)) from None

    def survivors(self, round_id: int, node_id: str) -> SurvivorList:
        with self._lock, self._sessions() as session:
            _round, live = self._readable(session, round_id, RoundPhase.CONSISTENCY_CHECK)
            survivors = self._server(live).survivor_list
            assert survivors is not None
            if node_id not in survivors.survivors:
                raise Conflict("This node's masked input did not arrive in time; it is not asked to confirm.")
            return survivors

    def unmask_request(self, round_id: int, node_id: str) -> UnmaskRequest:
        with self._lock, self._sessions() as session:
            _round, live = self._readable(session, round_id, RoundPhase.UNMASKING)
            server = self._server(live)
            request = server.unmask_request
            assert request is not None
            if node_id not in server.u4:
                raise Conflict("This node did not confirm the survivors in time; it is not asked to unmask.")
            return request

    # -- time -----------------------------------------------------------------------------------------------------

    def sweep(self) -> None:
        """Close phases past their deadline and finish rounds left ``aggregating`` (at start, then periodically)."""
        now = utcnow()
        with self._sessions() as session:
            due = [r.id for r in session.scalars(select(Round).where(
                Round.phase.in_([p.value for p in PHASES_SECURE]),
                Round.state.in_([RoundState.OPEN.value, RoundState.COLLECTING.value, RoundState.AGGREGATING.value]),
            )) if r.state == RoundState.AGGREGATING or r.deadline <= now]
        for round_id in due:
            try:
                with self._lock, self._sessions() as session:
                    round_ = self._locked(session, round_id)
                    if round_.state == RoundState.AGGREGATING:
                        self._finish(session, round_, self._live_for(session, round_))
                    elif RoundState(round_.state) in ACCEPTS_SUBMISSIONS and round_.deadline <= utcnow():
                        self._advance(session, round_, self._live_for(session, round_), deadline_passed=True)
            except Exception:
                log.exception("Settling secure round %s failed", round_id)

    # -- internals ------------------------------------------------------------------------------------------------

    def _key(self, round_: Round) -> str:
        return round_key(self._audience, round_.plan_sha256, round_.id)

    @staticmethod
    def _server(live: _Live) -> SecAggServer:
        assert live.server is not None
        return live.server

    @staticmethod
    def _locked(session: Session, round_id: int) -> Round:
        round_ = session.scalars(select(Round).where(Round.id == round_id).with_for_update()).first()
        if round_ is None:
            raise NotFound(f"There is no round {round_id}.")
        return round_

    @staticmethod
    def _spec(session: Session, round_: Round) -> TrainingPlan:
        return TrainingPlan.model_validate_json(get_row(session, Plan, round_.plan_sha256).canonical_json)

    @staticmethod
    def _check_open(round_: Round) -> None:
        if round_.phase not in {p.value for p in PHASES_SECURE}:
            raise Conflict(f"Round {round_.number} does not use secure aggregation.")
        if round_.state == RoundState.FAILED:
            raise Conflict(f"Round {round_.number} failed ({round_.reason}); wait for the next round.")
        if RoundState(round_.state) in FINISHED or round_.state == RoundState.AGGREGATING:
            raise Conflict(f"Round {round_.number} is {round_.state}; it needs nothing more from this node.")

    def _readable(self, session: Session, round_id: int, earliest: RoundPhase) -> tuple[Round, _Live]:
        round_ = self._locked(session, round_id)
        self._check_open(round_)
        order = [p.value for p in PHASES_SECURE]
        if order.index(round_.phase) < order.index(earliest.value):
            raise Conflict(f"Round {round_.number} is still in phase {round_.phase}; ask again when it moves on.")
        return round_, self._live_for(session, round_)

    def _receive(self, round_id: int, node_id: str, phase: RoundPhase, body: bytes | memoryview,
                 accept: Callable[[Session, Round, _Live], object], digest: str | None = None, *,
                 prestore: bool = False) -> SecureReceipt:
        """Count one message once. ``prestore``: write the (large) body before taking the lock; it is removed again
        if the message is refused and nothing refers to it (re-written under the lock in the rare race)."""
        digest = digest or sha256_hex(body)
        if prestore:
            self._store.put(body, digest)
        try:
            receipt = self._receive_locked(round_id, node_id, phase, body, accept, digest)
            if prestore and not receipt.counted and receipt.round_state in FINISHED:
                with self._lock:  # a retry after the round was finished and its messages deleted
                    self._store.delete(digest)
            return receipt
        except BaseException:
            if prestore:
                with self._lock, self._sessions() as session:
                    if session.scalars(select(Submission.id).where(Submission.blob_sha256 == digest)).first() is None:
                        self._store.delete(digest)
            raise

    def _receive_locked(self, round_id: int, node_id: str, phase: RoundPhase, body: bytes | memoryview,
                        accept: Callable[[Session, Round, _Live], object], digest: str) -> SecureReceipt:
        with self._lock, self._sessions() as session:
            round_ = self._locked(session, round_id)
            existing = session.scalars(select(Submission).where(
                Submission.round_id == round_id, Submission.phase == phase.value,
                Submission.node_id == node_id)).first()
            if existing is not None:
                if existing.blob_sha256 != digest:
                    raise Conflict(f"This node already sent a different {phase.value} message for this round.")
                return self._receipt(round_, phase, counted=False)
            self._check_open(round_)
            if round_.phase != phase.value:
                raise Conflict(f"Round {round_.number} is in phase {round_.phase}, not {phase.value}.")
            live = self._live_for(session, round_)
            try:
                accept(session, round_, live)
            except ProtocolViolation as error:
                self._live.pop(round_id, None)
                raise InvalidInput(str(error)) from None
            except BaseException:
                self._live.pop(round_id, None)
                raise
            try:
                self._store.put(body, digest)  # durable before it is counted (a no-op when prestored)
                session.add(Submission(round_id=round_id, phase=phase.value, node_id=node_id, blob_sha256=digest,
                                       examples=0, received=utcnow()))
                if round_.state == RoundState.OPEN:
                    check_transition(round_.state, RoundState.COLLECTING)
                    round_.state = RoundState.COLLECTING.value
                round_.revision += 1
                session.commit()
                live.seen += 1
                self._advance(session, round_, live, deadline_passed=False)
            except BaseException:
                self._live.pop(round_id, None)  # the next request rebuilds from what the database holds
                raise
            receipt = self._receipt(round_, phase, counted=True)
        self._notify()
        return receipt

    @staticmethod
    def _receipt(round_: Round, phase: RoundPhase, *, counted: bool) -> SecureReceipt:
        return SecureReceipt(round_id=round_.id, phase=phase, counted=counted, round_state=RoundState(round_.state),
                             round_phase=RoundPhase(round_.phase))

    def _count(self, session: Session, round_: Round) -> int:
        return int(session.scalar(select(func.count()).select_from(Submission).where(
            Submission.round_id == round_.id, Submission.phase == round_.phase)) or 0)

    def _live_for(self, session: Session, round_: Round) -> _Live:
        """This process's view of the round, rebuilt by replaying the stored messages when it is not current."""
        stored = int(session.scalar(select(func.count()).select_from(Submission).where(
            Submission.round_id == round_.id)) or 0)
        live = self._live.get(round_.id)
        if live is not None and live.seen == stored and live.phase == round_.phase:
            return live
        live = self._replay(session, round_)
        self._live[round_.id] = live
        return live

    def _replay(self, session: Session, round_: Round) -> _Live:
        rows = session.scalars(select(Submission).where(Submission.round_id == round_.id)
                               .order_by(Submission.id)).all()
        live = _Live(phase=round_.phase, seen=len(rows))
        by_phase: dict[str, list[Submission]] = {}
        for row in rows:
            by_phase.setdefault(row.phase, []).append(row)
        for row in by_phase.get(RoundPhase.ADVERTISE_KEYS.value, []):
            stored = bytes(self._store.get(row.blob_sha256))
            live.advertisements[row.node_id] = KeyAdvertisement.model_validate_json(stored)
        order = [p.value for p in PHASES_SECURE]
        reached = order.index(round_.phase)
        if reached == 0:
            return live
        server = live.server = self._new_server(session, round_, live.advertisements)
        server.close_advertising()
        for row in by_phase.get(RoundPhase.SHARE_KEYS.value, []):
            server.receive_shares(ShareKeysMessage.model_validate_json(bytes(self._store.get(row.blob_sha256))))
        if reached == 1:
            return live
        server.close_sharing()
        for row in by_phase.get(RoundPhase.MASKED_INPUT.value, []):
            server.receive_masked_input(MaskedInput.from_bytes(self._store.get(row.blob_sha256)))
        if reached == 2:
            return live
        server.close_masking()
        for row in by_phase.get(RoundPhase.CONSISTENCY_CHECK.value, []):
            server.receive_signature(ConsistencySignature.model_validate_json(bytes(self._store.get(row.blob_sha256))))
        if reached == 3:
            return live
        server.close_consistency()
        for row in by_phase.get(RoundPhase.UNMASKING.value, []):
            server.receive_unmask(UnmaskResponse.model_validate_json(bytes(self._store.get(row.blob_sha256))))
        return live

    def _vector_length(self, model_sha256: str) -> int:
        if model_sha256 not in self._lengths:
            views = tensor_views(self._blobs.get(model_sha256, cache=True))
            self._lengths[model_sha256] = int(sum(view.size for view in views.values()))
        return self._lengths[model_sha256]

    def _new_server(self, session: Session, round_: Round, advertisements: dict[str, KeyAdvertisement]
                    ) -> SecAggServer:
        """The round's server with every advertisement received (still in phase advertise_keys)."""
        spec = self._spec(session, round_)
        quantisation = QuantisationSpec.for_round(max(len(advertisements), 1), spec.secure_aggregation_clip,
                                                  spec.secure_aggregation_max_examples)
        identity = {node: get_row(session, Node, node).public_key for node in advertisements}
        model = get_row(session, ModelVersion, round_.model_version)
        server = SecAggServer(self._key(round_), identity, self._vector_length(model.sha256), quantisation,
                              spec.secure_aggregation_threshold)
        for node in sorted(advertisements):
            server.receive_advertisement(advertisements[node])
        return server

    def _advance(self, session: Session, round_: Round, live: _Live, *, deadline_passed: bool) -> None:
        """Close the current phase when it is complete (or its deadline passed); commits any change."""
        spec = self._spec(session, round_)
        phase, count = RoundPhase(round_.phase), self._count(session, round_)
        try:
            if phase == RoundPhase.ADVERTISE_KEYS:
                if count < spec.min_nodes:
                    if deadline_passed:
                        self._fail(session, round_, f"deadline passed with {count} of {spec.min_nodes} nodes "
                                                    "advertising keys")
                    return
                live.server = self._new_server(session, round_, live.advertisements)
                live.server.close_advertising()
                self._next_phase(session, round_, live, RoundPhase.SHARE_KEYS, spec)
            elif phase == RoundPhase.SHARE_KEYS:
                if count == len(self._server(live).u1) or deadline_passed:
                    self._server(live).close_sharing()
                    self._next_phase(session, round_, live, RoundPhase.MASKED_INPUT, spec)
            elif phase == RoundPhase.MASKED_INPUT:
                if count == len(self._server(live).u2) or deadline_passed:
                    self._server(live).close_masking()
                    self._next_phase(session, round_, live, RoundPhase.CONSISTENCY_CHECK, spec)
            elif phase == RoundPhase.CONSISTENCY_CHECK:
                server = self._server(live)
                if count == len(server.u3) or (deadline_passed and (count >= (server.threshold or 0)
                                                                     or round_.phase_extended)):
                    server.close_consistency()  # fewer than t signatures: TooFewSurvivors, the round fails
                    self._next_phase(session, round_, live, RoundPhase.UNMASKING, spec)
                elif deadline_passed:  # the grace passed with fewer than t signatures: the phase's full time, once
                    round_.phase_extended = True
                    round_.deadline = utcnow() + dt.timedelta(
                        seconds=max(0, spec.secure_phase_seconds - CONSISTENCY_GRACE_SECONDS))
                    round_.revision += 1
                    session.commit()
            elif phase == RoundPhase.UNMASKING:
                threshold = self._server(live).threshold or 0
                if count >= threshold or deadline_passed:
                    check_transition(round_.state, RoundState.AGGREGATING)
                    round_.state = RoundState.AGGREGATING.value
                    round_.revision += 1
                    session.commit()
                    self._finish(session, round_, live)
        except SecAggError as error:  # too few survivors, a failed reconstruction, an impossible number format
            self._fail(session, round_, str(error))

    def _next_phase(self, session: Session, round_: Round, live: _Live, phase: RoundPhase, spec: TrainingPlan) -> None:
        round_.phase = live.phase = phase.value
        round_.phase_extended = False
        seconds = spec.secure_phase_seconds
        if phase == RoundPhase.CONSISTENCY_CHECK:  # live nodes sign at once; vanished ones never do
            seconds = min(seconds, CONSISTENCY_GRACE_SECONDS)
        round_.deadline = utcnow() + dt.timedelta(seconds=seconds)
        round_.revision += 1
        session.commit()
        log.info("Secure round %s (round %s of plan %s…) moved to %s", round_.id, round_.number,
                 round_.plan_sha256[:12], phase.value)

    def _finish(self, session: Session, round_: Round, live: _Live) -> None:
        """Unmask the sum, add the mean delta to the round's model, publish the new version, open the next round."""
        started = time.perf_counter()
        try:
            result = self._server(live).finish()
        except TooFewSurvivors as error:
            self._fail(session, round_, str(error))
            return
        except SecAggError as error:
            self._fail(session, round_, f"unmasking failed: {error}")
            return
        try:
            published = self._publish(session, round_, result)
        except BaseException:  # e.g. the blob store is full: stays aggregating; the sweep replays and tries again
            self._live.pop(round_.id, None)
            raise
        if not published:
            return
        log.info("Secure round %s of plan %s… complete: %s masked inputs (%s dropped), unmasked in %.3f s",
                 round_.number, round_.plan_sha256[:12], len(result.contributors), len(result.dropped),
                 time.perf_counter() - started)

    def _publish(self, session: Session, round_: Round, result: AggregateResult) -> bool:
        """Publish the round's model, unless another worker finished the round first (``False``): the state is
        re-read under the round's row lock, since ``aggregating`` was committed (and the lock let go) before the
        unmasking, and another worker's sweep may have finished it meanwhile."""
        current = session.scalars(select(Round).where(Round.id == round_.id).with_for_update()
                                  .execution_options(populate_existing=True)).first()
        if current is None or current.state != RoundState.AGGREGATING:
            session.rollback()
            self._live.pop(round_.id, None)
            return False
        parent = get_row(session, ModelVersion, round_.model_version)
        plan = get_row(session, Plan, round_.plan_sha256)
        weights = self._apply(self._blobs.get(parent.sha256, cache=True), result, parent.architecture)
        weights_sha = self._blobs.put(weights, cache=True)
        card = json.loads(parent.card_json)
        card.update(weights_sha256=weights_sha, created=utcnow().isoformat(), training={
            "federated": {"plan_sha256": plan.sha256, "round": round_.number, "parent_version": parent.version,
                          "contributors": len(result.contributors), "total_examples": result.total_examples,
                          "secure_aggregation": True, "dropped": len(result.dropped),
                          "quantisation_error_bound": result.error_bound}})
        model = ModelVersion(sha256=weights_sha, architecture=parent.architecture, card_json="{}",
                             size_bytes=len(weights), created=utcnow(), parent_version=parent.version,
                             plan_sha256=plan.sha256, round_number=round_.number,
                             contributors=len(result.contributors), total_examples=result.total_examples)
        session.add(model)
        session.flush()
        card["version"] = f"federated-{model.version}"
        model.card_json = json.dumps(card, sort_keys=True)
        round_.result_version = model.version
        check_transition(round_.state, RoundState.COMPLETE)
        round_.state = RoundState.COMPLETE.value
        round_.revision += 1
        self._next_round(session, round_, plan, model.version)
        session.commit()
        self._forget(session, round_)
        return True

    @staticmethod
    def _apply(parent: bytes | memoryview, result: AggregateResult, architecture: str) -> memoryview:
        """global + mean delta, each tensor in its own dtype (integers rounded), as safetensors bytes."""
        views = tensor_views(parent)
        vector, layout = flatten_state(views)
        if vector.size != result.mean.size:
            raise SecAggError("The unmasked sum does not fit the round's model.")
        vector += result.mean
        offsets, offset = {}, 0
        for name, shape, _dtype in layout:
            size = int(np.prod(shape, dtype=np.int64))
            offsets[name] = (offset, offset + size)
            offset += size

        def fill(name: str, out: np.ndarray) -> None:
            begin, end = offsets[name]
            part = vector[begin:end]
            flat = out.reshape(-1)
            flat[:] = part if np.issubdtype(out.dtype, np.floating) else np.rint(part)

        return write_safetensors({name: (view.dtype, view.shape) for name, view in views.items()}, fill,
                                 {"architecture": architecture})

    def _next_round(self, session: Session, finished: Round, plan: Plan, model_version: int) -> None:
        if finished.number < TrainingPlan.model_validate_json(plan.canonical_json).rounds:
            self._open_round(session, plan, finished.number + 1, model_version)
        else:
            plan.status = PlanStatus.FINISHED.value

    def _fail(self, session: Session, round_: Round, reason: str) -> None:
        if RoundState(round_.state) in FINISHED:
            return
        check_transition(round_.state, RoundState.FAILED)
        round_.state = RoundState.FAILED.value
        round_.reason = reason
        round_.revision += 1
        self._next_round(session, round_, get_row(session, Plan, round_.plan_sha256), round_.model_version)
        session.commit()
        self._forget(session, round_)
        log.warning("Secure round %s of plan %s… failed: %s", round_.number, round_.plan_sha256[:12], reason)

    def _forget(self, session: Session, round_: Round) -> None:
        """A finished round's stored messages are deleted (the rows keep hashes only); its server is dropped."""
        for sha in session.scalars(select(Submission.blob_sha256).where(Submission.round_id == round_.id)).all():
            self._store.delete(sha)
        self._live.pop(round_.id, None)

