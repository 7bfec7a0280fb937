"""The participation engine: take part in one plan's rounds, exactly as the node's admin approved.

One step of ``run()``:
1. long poll ``/plans/{sha}/wait`` (answers on a change, never a fixed sleep);
2. settle rounds this node contributed to: once aggregated, offer the new global model as a local *candidate*
   (``candidates``: evaluated and calibrated on the dataset's validation split; an admin accepts or rejects it);
3. for an open round not yet contributed to: check — every time, in the order of ``eligibility`` — approval, plan,
   coordinator, dataset, policy and privacy budget, giving one ``ApprovedRound``; then join, download the round's
   model (sha256 checked), train on the approved dataset, record ε in the ledger, and hand the update to the upload
   strategy (``upload.PlainUpload``, or ``secure_upload`` when the approved plan asks for secure aggregation).

Invariants: nothing trains without an active approval for this exact plan hash, and nothing leaves without one: just
before an update is sent the approval is checked again (gone: the update is deleted, never sent) and so is whether
it must be aggregated securely — fixed at training time in its ``RoundRecord.secure`` and widened by the plan and
policy as they stand — so an update meant for secure aggregation is never sent in the clear, whatever phase the
coordinator announces; a round given up (refused, closed, withdrawn) is ``missed`` for good; ε is recorded *before*
the update leaves (a crash in between can only over-count, never under-count); after a crash or restart the engine
resumes from ``state.StateStore`` and re-sends the same update bytes (the coordinator counts them once) instead of
training again; a coordinator that disappears gives status ``unreachable`` with a retry delay (``backoff.Backoff``),
never a crash; only a stop, a refusal (approval, policy, budget, revocation), a TLS failure or the end of the plan
ends ``run()``. Refusals are decided on typed reasons (``RefusalReason``, ``ErrorCode``), never on a message's
words.

Threading: ``run()`` blocks; call it in a worker thread (QThread in the GUI). ``stop()``, ``pause()`` and
``resume()`` are thread-safe; callbacks run on the worker thread.

``EngineOptions``, ``EngineStatus``, ``EngineResult`` and ``EngineStage`` live in ``engine_types`` and are
re-exported here.
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pneumodesk.errors import PneumoDeskError
from pneumodesk.federation.bounds import bounded_update
from pneumodesk.federation.messages import RoundInfo
from pneumodesk.federation.plan import TrainingPlan
from pneumodesk.federation.tensors import StateDict, sha256_hex, state_dict_from_bytes, state_dict_to_bytes
from pneumodesk.federation.vocabulary import (
    ACCEPTS_SUBMISSIONS,
    FINISHED,
    PHASES_SECURE,
    MembershipStatus,
    PlanStatus,
    RefusalReason,
    RoundPhase,
    RoundState,
)

from .api import CoordinatorClient
from .backoff import Backoff
from .eligibility import approve_round, approved_plan
from .engine_types import TERMINAL, EngineOptions, EngineResult, EngineStage, EngineStatus
from .enrolment import FederationConnection, connect, refresh_status
from .errors import (
    ClientError,
    CoordinatorUnreachable,
    NotAuthorised,
    ParticipationRefused,
    Refused,
    Stopped,
    TlsFailure,
)
from .global_model import checked_global_model
from .keys import NodeKeyStore
from .state import ParticipationState, RoundRecord, StateStore
from .upload import PlainUpload, PreparedUpdate, UpdateUploader

if TYPE_CHECKING:
    import numpy as np

    from pneumodesk.node import NodeService
    from pneumodesk.training.local_round import LocalUpdate
    from pneumodesk.training.privacy import PrivacyCost

__all__ = ["TERMINAL", "EngineOptions", "EngineResult", "EngineStage", "EngineStatus", "ParticipationEngine"]

log = logging.getLogger(__name__)


class _StopRequested(Exception):
    pass


class _RetryNow(Exception):
    """Start the step again at once (after a pause interrupted training)."""


@dataclass
class _Run:
    backoff: Backoff
    trained: int = 0
    candidates: list[int] = field(default_factory=list)
    since: str | None = None
    operator_approved: bool = False


class ParticipationEngine:
    """Takes part in plan ``plan_sha256`` for the node in ``home`` (see the module docstring).

    ``on_status(EngineStatus)`` is called on every change of phase and for training progress. ``connection`` may be
    given (tests, a recorder); otherwise one is opened on ``run()`` from the node's membership and the node key in
    ``key_store`` (default: the node home's ``HomeKeyStore``), with ``connect_options`` (recorder, proxies, ...).
    """

    def __init__(self, service: NodeService, plan_sha256: str, *, home: Path | None = None,
                 key_store: NodeKeyStore | None = None, options: EngineOptions | None = None,
                 on_status: Callable[[EngineStatus], None] | None = None,
                 connection: FederationConnection | None = None, uploader: UpdateUploader | None = None,
                 connect_options: Mapping[str, Any] | None = None) -> None:
        self.service, self.plan_sha256 = service, plan_sha256.lower()
        self.home = Path(home) if home is not None else Path(service.home)
        self.key_store = key_store
        self.options = options if options is not None else EngineOptions()
        self.on_status = on_status
        self.connection = connection
        self.uploader: UpdateUploader | None = uploader  # None: chosen by the approved plan (``_uploader``)
        self._connect_options = dict(connect_options or {})
        self.store = StateStore(self.home, self.plan_sha256)
        self.state: ParticipationState = self.store.load()
        self.status = EngineStatus(EngineStage.STARTING, "Starting.", self.plan_sha256)
        self._stop = threading.Event()
        self._running = threading.Event()
        self._running.set()
        self._arrays: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}
        self._run = _Run(Backoff(self.options.retry_delays))

    # -- control (any thread) -----------------------------------------------------------------------------------

    def stop(self) -> None:
        """Stop after the step in hand; a request the engine is waiting on (a long poll) ends at once."""
        self._stop.set()
        self._running.set()
        connection = self.connection
        if connection is not None:
            connection.client.transport.interrupt()

    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def _should_stop(self) -> bool:
        return self._stop.is_set() or not self._running.is_set()

    # -- status ---------------------------------------------------------------------------------------------------

    def _emit(self, phase: EngineStage, message: str, *, round_number: int | None = None,
              progress: float | None = None, retry_in: float | None = None,
              reason: RefusalReason | None = None) -> None:
        self.status = EngineStatus(phase, message, self.plan_sha256, round_number=round_number,
                                   rounds_trained=self._run.trained, progress=progress, retry_in=retry_in,
                                   reason=reason)
        if self.on_status is not None:
            self.on_status(self.status)

    # -- main loop ------------------------------------------------------------------------------------------------

    def run(self) -> EngineResult:
        """Run until the plan ends, ``max_rounds`` are done, a refusal, a stop, or a failure; never raises for
        those (the result and the last status say what happened)."""
        self._emit(EngineStage.STARTING, "Connecting to the federation.")
        owned = self.connection is None
        try:
            if self.connection is None:
                from .home_key_store import HomeKeyStore

                key_store = self.key_store if self.key_store is not None else HomeKeyStore(self.home)
                self.connection = connect(self.service, key_store, **self._connect_options)
            while True:
                self._check_stop_or_pause()
                try:
                    if not self._approved_by_operator():
                        continue
                    if self._step():
                        return self._finish(EngineStage.FINISHED, self._finished_message())
                    self._run.backoff.reset()
                except CoordinatorUnreachable as error:
                    self._wait_before_retry(str(error))
                except _RetryNow:
                    continue
        except (_StopRequested, Stopped):
            return self._finish(EngineStage.STOPPED, "Stopped. Any round in progress resumes on the next start.")
        except ParticipationRefused as error:
            return self._finish(EngineStage.REFUSED, str(error), reason=error.reason)
        except NotAuthorised as error:
            reason = self._refusal_reason(error)
            if reason == RefusalReason.REVOKED:
                self.service.membership.set_status(MembershipStatus.REVOKED)
            return self._finish(EngineStage.REFUSED, str(error), reason=reason)
        except TlsFailure as error:
            return self._finish(EngineStage.FAILED, str(error), reason=RefusalReason.TLS)
        except PneumoDeskError as error:  # typed: a hostile answer, unreadable data, ...; the message says which
            log.warning("The participation engine stopped: %s", error)
            return self._finish(EngineStage.FAILED, str(error))
        except Exception as error:  # the GUI shows it; the log keeps the traceback (no data values in it)
            log.exception("The participation engine failed")
            return self._finish(EngineStage.FAILED, f"Training stopped after an unexpected error: {error}")
        finally:
            if owned and self.connection is not None:  # idle keep-alive connections would hold the server up
                self.connection.close()
                self.connection = None

    def _refusal_reason(self, error: NotAuthorised) -> RefusalReason:
        """REVOKED when the error says so by its reason; a bare 403 (a coordinator that sends no ``node_revoked``
        code) is asked about once more, by the membership check, which learns a revocation from the protocol."""
        if error.reason == RefusalReason.REVOKED or error.status != 403 or self.connection is None:
            return error.reason
        try:
            status = refresh_status(self.service, self.connection)
        except ClientError:  # cannot ask: report what we know
            return error.reason
        return RefusalReason.REVOKED if status == MembershipStatus.REVOKED else error.reason

    def _approved_by_operator(self) -> bool:
        """Once per run: learn (and store) whether the operator approved this node; wait while pending."""
        if self._run.operator_approved:
            return True
        assert self.connection is not None
        status = refresh_status(self.service, self.connection)
        if status == MembershipStatus.REVOKED:
            raise NotAuthorised("The federation operator revoked this node's enrolment.", 403,
                                reason=RefusalReason.REVOKED)
        if status == MembershipStatus.APPROVED:
            self._run.operator_approved = True
            return True
        delay = self._run.backoff.next_delay()
        self._emit(EngineStage.WAITING, f"Waiting for the federation operator to approve this node; asking again in "
                   f"{delay:g} s.", retry_in=delay)
        self._sleep(delay)
        return False

    def _finish(self, phase: EngineStage, message: str, reason: RefusalReason | None = None) -> EngineResult:
        assert phase in TERMINAL
        self._emit(phase, message, reason=reason)
        return EngineResult(phase, message, self._run.trained, tuple(self._run.candidates), reason)

    def _finished_message(self) -> str:
        rounds = self._run.trained
        made = len(self._run.candidates)
        text = f"Done: trained {rounds} round{'s' if rounds != 1 else ''}."
        if made:
            text += f" {made} new model{'s' if made != 1 else ''} wait{'s' if made == 1 else ''} for an admin's review."
        return text

    def _check_stop_or_pause(self) -> None:
        if self._stop.is_set():
            raise _StopRequested
        if not self._running.is_set():
            self._emit(EngineStage.PAUSED, "Paused.")
            self._running.wait()
            if self._stop.is_set():
                raise _StopRequested

    def _sleep(self, seconds: float) -> None:
        """Wait ``seconds``, or less when a stop is asked for (then ``_StopRequested``)."""
        if self._stop.wait(seconds):
            raise _StopRequested

    def _wait_before_retry(self, why: str) -> None:
        delay = self._run.backoff.next_delay()
        self._emit(EngineStage.UNREACHABLE, f"Coordinator unreachable, retrying in {delay:g} s. ({why})",
                   retry_in=delay)
        self._sleep(delay)

    # -- one step -------------------------------------------------------------------------------------------------

    @property
    def client(self) -> CoordinatorClient:
        assert self.connection is not None
        return self.connection.client

    def _step(self) -> bool:
        """One poll and what follows from it; True when the run is over."""
        self._emit(EngineStage.WAITING, "Waiting for the next round.")
        wait = self.client.wait(self.plan_sha256, self._run.since, self.options.poll_timeout)
        self._run.since = wait.round.revision if wait.round is not None else "finished"
        self._settle(wait.round)
        limit = self.options.max_rounds
        if PlanStatus(wait.plan_status) == PlanStatus.FINISHED or wait.round is None:
            self._offer_latest()
            return True
        current = wait.round
        record = self.state.rounds.get(current.round_id)
        if limit is not None and self._run.trained >= limit and not self._unsettled():
            self._offer_latest()
            return True
        if RoundState(current.state) in ACCEPTS_SUBMISSIONS and (
                limit is None or self._run.trained < limit or (record is not None and record.stage == "trained")):
            if record is None:
                self._participate(current)
            elif record.stage == "trained":
                self._deliver(current, record)
        elif record is not None and record.stage == "uploaded":
            self._emit(EngineStage.SUBMITTED, f"Round {current.number}: update sent; waiting for the other hospitals "
                       f"({current.updates_received} of {current.min_nodes} in).", round_number=current.number)
        return False

    def _unsettled(self) -> bool:
        return any(r.stage in ("trained", "uploaded") for r in self.state.rounds.values())

    # -- settling and candidates --------------------------------------------------------------------------------

    def _settle(self, current: RoundInfo | None) -> None:
        """Rounds we contributed to that have ended: remember their result version, drop leftovers."""
        changed = False
        for record in self.state.rounds.values():
            if record.stage not in ("trained", "uploaded"):
                continue
            is_current = current is not None and current.round_id == record.round_id
            if is_current and current is not None and RoundState(current.state) not in FINISHED:
                continue
            info = current if is_current and current is not None else self.client.round(record.round_id)
            state = RoundState(info.state)
            if state not in FINISHED:
                continue
            record.result_version = info.result_version if state == RoundState.COMPLETE else None
            masked = self._forget_secure_state(record.round_id)
            delivered = record.stage == "uploaded" or (masked and state == RoundState.COMPLETE)
            record.stage = "settled" if delivered else "missed"
            self.store.drop_update(record.round_id)
            changed = True
        if changed:
            self.store.save(self.state)
            if self.options.candidates == "every":
                self._offer_latest()

    def _forget_secure_state(self, round_id: int) -> bool:
        """Drop a settled round's secure-aggregation state; True when its masked input had been acknowledged."""
        from .secure_upload import forget_finished_round

        if self.connection is None:
            return False
        return forget_finished_round(self.home, self.connection.membership.federation, self.plan_sha256, round_id)

    def _offer_latest(self) -> None:
        """Offer the newest global version produced by a round we contributed to, once."""
        from .candidates import build_candidate

        if self.options.candidates == "none":
            return
        versions = [r.result_version for r in self.state.rounds.values()
                    if r.stage == "settled" and r.result_version is not None]
        if not versions:
            return
        version = max(versions)
        if version in self.state.candidates:
            return
        record = next(r for r in self.state.rounds.values() if r.result_version == version)
        self._emit(EngineStage.EVALUATING, f"Checking the new global model (version {version}) on this hospital's "
                   "validation images.", round_number=record.number)
        local_id: int | None
        try:
            local_id = build_candidate(self.service, self.client, self.home, self.plan_sha256, version, record.number)
        except ClientError:
            raise
        except Exception as error:  # e.g. a validation split with one class: training itself went fine
            log.warning("The new global model could not be checked locally: %s", error)
            self._emit(EngineStage.EVALUATING, f"The new global model (version {version}) could not be checked on this "
                       f"hospital's validation images, so it is not offered: {error}", round_number=record.number)
            local_id = None
        self.state.candidates.append(version)
        self.store.save(self.state)
        if local_id is not None:
            self._run.candidates.append(local_id)

    # -- one round ------------------------------------------------------------------------------------------------

    def _participate(self, current: RoundInfo) -> None:
        self._emit(EngineStage.CHECKING, f"Round {current.number}: checking approval, policy and privacy budget.",
                   round_number=current.number)
        membership = self.connection.membership if self.connection is not None else None
        approved = approve_round(self.service, self.plan_sha256, membership)
        try:
            joined = self.client.join(self.plan_sha256)
        except Refused as error:
            if error.status == 409:  # the round stopped accepting meanwhile: wait for the next one
                return
            raise
        number = joined.number
        secure = _requires_secure_aggregation(approved.plan, self.service) or joined.phase in PHASES_SECURE
        self._emit(EngineStage.DOWNLOADING, f"Round {number}: downloading the global model.", round_number=number)
        weights = self.client.weights(joined.model_version, joined.model_sha256,
                                      architecture=approved.plan.architecture)
        initial = checked_global_model(weights, approved.plan)  # names, shapes, float32, finite: before training
        inputs, labels = self._training_arrays(approved.dataset_id, approved.plan.input_size)
        update = self._train(initial, inputs, labels, approved.plan, approved.cost, number)
        state, examples = bounded_update(update.state, update.examples, weights, approved.plan)  # norm, public count
        data = state_dict_to_bytes(state)
        record = RoundRecord(joined.round_id, number, "trained", joined.model_version, examples, sha256_hex(data),
                             secure=secure)
        cost = approved.cost
        if cost is not None and approved.epsilon is not None:
            self.service.ledger.record(approved.dataset_id, self.plan_sha256, number, approved.epsilon, cost.delta,
                                       cost.noise_multiplier, cost.sample_rate, cost.steps_per_round)
        self.store.save_update(joined.round_id, data)
        self.state.rounds[joined.round_id] = record
        self.store.save(self.state)
        self._run.trained += 1
        self._deliver(joined, record, data)

    def _training_arrays(self, dataset_id: int, input_size: int) -> tuple[np.ndarray, np.ndarray]:
        from pneumodesk.training.local_round import load_training_arrays

        key = (dataset_id, input_size)
        if key not in self._arrays:
            self._emit(EngineStage.TRAINING, "Reading the approved dataset's training images.", progress=0.0)
            files = self.service.datasets.files(dataset_id, "training")
            self._arrays = {key: load_training_arrays(files, input_size)}
        return self._arrays[key]

    def _train(self, weights: StateDict, inputs: np.ndarray, labels: np.ndarray, plan: TrainingPlan,
               cost: PrivacyCost | None, number: int) -> LocalUpdate:
        import torch

        from pneumodesk.training.local_round import TrainingCancelled, train_local_round

        initial = {k: torch.from_numpy(v.copy()) for k, v in weights.items()}
        # The seed drives model construction and plain SGD only; DP noise and sampling come from a CSPRNG
        # (``training.noise``), so no seed, known or guessed, can regenerate them.
        seed = self.options.seed if self.options.seed is not None else secrets.randbits(63)
        last = [0.0]

        def progress(fraction: float) -> None:
            if fraction - last[0] >= 0.02 or fraction >= 1.0:
                last[0] = fraction
                self._emit(EngineStage.TRAINING, f"Round {number}: training on this hospital's images "
                           f"({fraction:.0%}).", round_number=number, progress=fraction)

        self._emit(EngineStage.TRAINING, f"Round {number}: training on this hospital's images.", round_number=number,
                   progress=0.0)
        try:
            return train_local_round(initial, inputs, labels, plan, cost, seed=seed, progress=progress,
                                     should_stop=self._should_stop)
        except TrainingCancelled:
            if self._stop.is_set():
                raise _StopRequested from None
            self._check_stop_or_pause()  # paused: wait, then the next step trains the round afresh
            raise _RetryNow from None

    def _uploader(self, current: RoundInfo, plan: TrainingPlan, secure: bool) -> UpdateUploader:
        """The caller's strategy, else secure aggregation whenever the update's terms (``secure``) or the round
        ask for it; plain upload only for an update trained without that requirement in a plain round."""
        if self.uploader is not None:
            return self.uploader
        if not secure and current.phase == RoundPhase.PLAIN_INPUT:
            return PlainUpload()
        from .roster_policy import RosterPolicy
        from .secure_upload import secure_uploader

        def on_phase(step: str) -> None:
            self._emit(EngineStage.UPLOADING, f"Round {current.number}: secure aggregation — {step.replace('_', ' ')}.",
                       round_number=current.number)

        assert self.connection is not None
        return secure_uploader(self.home, self.connection, plan=plan, poll_timeout=self.options.poll_timeout,
                               on_phase=on_phase, roster_policy=RosterPolicy.of(self.service))

    def _give_up(self, record: RoundRecord) -> None:
        """The round is missed for good: its update is deleted unsent (ε stays spent) and never delivered later."""
        record.stage = "missed"
        self.store.drop_update(record.round_id)
        self.store.save(self.state)

    def _delivery_terms(self, current: RoundInfo, record: RoundRecord) -> tuple[TrainingPlan, bool]:
        """Re-check, just before the update leaves, that it may leave now and how: (the approved plan, whether it
        must be aggregated securely). An update without an active approval, or one that must be aggregated
        securely in a round the coordinator runs in the clear, is dropped (``_give_up``) and the run is refused."""
        approved = approved_plan(self.service, self.plan_sha256)
        if approved is None:
            self._give_up(record)
            raise ParticipationRefused(f"The approval of this plan was withdrawn after round {record.number} was "
                                       "trained; its update was deleted and not sent.", RefusalReason.NOT_APPROVED)
        plan = approved[1]
        secure = record.secure or _requires_secure_aggregation(plan, self.service)
        uploader_name = self.uploader.name if self.uploader is not None else None
        if secure and (current.phase not in PHASES_SECURE or uploader_name == PlainUpload.name):
            self._give_up(record)
            raise ParticipationRefused(f"Round {record.number}'s update must be sent with secure aggregation (the "
                                       "plan or this node's policy requires it), but the coordinator runs the round "
                                       "in the clear; the update was deleted and not sent.",
                                       RefusalReason.OUTSIDE_POLICY)
        return plan, secure

    def _deliver(self, current: RoundInfo, record: RoundRecord, data: bytes | None = None) -> None:
        """Send a trained update, on the terms checked by ``_delivery_terms`` right now (a round resumed after a
        restart, or after a pause, is checked again: ε was spent already, but nothing leaves without them)."""
        self._check_stop_or_pause()  # a stop here keeps the trained update for the next start
        data = data if data is not None else self.store.load_update(record.round_id)
        if data is None or sha256_hex(data) != record.update_sha256:  # lost file: the round is missed, ε stays spent
            record.stage = "missed"
            self.store.save(self.state)
            return
        plan, secure = self._delivery_terms(current, record)
        self._emit(EngineStage.UPLOADING, f"Round {record.number}: sending the model update.",
                   round_number=record.number)
        payload = data
        update = PreparedUpdate(payload, record.update_sha256, record.examples,
                                arrays=lambda: state_dict_from_bytes(payload))
        try:
            receipt = self._uploader(current, plan, secure).deliver(self.client, current, update, self._should_stop)
        except Refused as error:
            if error.status in (404, 409):  # the round closed before our update arrived
                self._give_up(record)
                self._emit(EngineStage.WAITING, f"Round {record.number} closed before the update arrived: "
                           f"{error}", round_number=record.number)
                return
            raise
        except ParticipationRefused:  # e.g. a secure round refused: never taken part in again (a tombstone there)
            self._give_up(record)
            raise
        record.stage = "uploaded"
        self.store.drop_update(record.round_id)
        self.store.save(self.state)
        self._emit(EngineStage.SUBMITTED, f"Round {record.number}: update sent ({receipt.round_state}).",
                   round_number=record.number)


def _requires_secure_aggregation(plan: TrainingPlan, service: NodeService) -> bool:
    """Whether the plan or the node's policy (as it stands now) requires secure aggregation."""
    return plan.secure_aggregation or service.policy.get().require_secure_aggregation
