"""The participation state machine: take part in one plan's rounds, exactly as the node's admin approved.

One step of ``run()``:
1. long poll ``/plans/{sha}/wait`` (answers on a change, never a fixed sleep);
2. settle rounds this node contributed to: once aggregated, offer the new global model as a local *candidate*
   (evaluated and calibrated on the dataset's validation split; an admin accepts or rejects it);
3. for an open round not yet contributed to: check — every time, in this order — that an approval for this plan
   hash is active, that the node policy still allows the plan, and that the dataset's privacy ledger has room;
   then join, download the round's model (sha256 checked), train on the approved dataset, record ε in the
   ledger, and hand the update to the upload strategy (``upload.PlainUpload``; secure aggregation plugs in there).

Invariants: nothing trains without an active approval for this exact plan hash; ε is recorded *before* the update
leaves (a crash in between can only over-count, never under-count); after a crash or restart the engine resumes
from ``state.StateStore`` and re-sends the same update bytes (the coordinator counts them once) instead of training
again; a coordinator that disappears gives status ``unreachable`` with a retry delay, never a crash; only a stop,
a refusal (approval, policy, budget, revocation), a TLS failure or the end of the plan ends ``run()``.

Threading: ``run()`` blocks; call it in a worker thread (QThread in the GUI). ``stop()``, ``pause()`` and
``resume()`` are thread-safe; callbacks run on the worker thread.
"""

from __future__ import annotations

import enum
import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pneumodesk.federation.messages import RoundInfo
from pneumodesk.federation.plan import TrainingPlan
from pneumodesk.federation.tensors import sha256_hex, state_dict_from_bytes, state_dict_to_bytes
from pneumodesk.federation.vocabulary import MembershipStatus

from .enrolment import FederationConnection, connect
from .errors import (
    ClientError,
    CoordinatorUnreachable,
    NotAuthorised,
    ParticipationRefused,
    Refused,
    Stopped,
    TlsFailure,
)
from .state import ParticipationState, RoundRecord, StateStore
from .upload import PlainUpload, PreparedUpdate, UpdateUploader

if TYPE_CHECKING:
    from pneumodesk.node import NodeService

log = logging.getLogger(__name__)

ACCEPTING = ("open", "collecting")
SETTLED = ("complete", "failed")


class EngineStage(enum.StrEnum):
    STARTING = "starting"
    WAITING = "waiting"            # for the plan's next round (long poll)
    CHECKING = "checking"          # approval, policy, privacy budget
    DOWNLOADING = "downloading"
    TRAINING = "training"          # progress 0…1
    UPLOADING = "uploading"
    SUBMITTED = "submitted"        # our update is in; the round is collecting the others
    EVALUATING = "evaluating"      # a new global model is checked on the local validation split
    UNREACHABLE = "unreachable"    # retry_in seconds until the next attempt
    PAUSED = "paused"
    # terminal
    FINISHED = "finished"          # the plan ended, or the rounds asked for are done
    REFUSED = "refused"            # reason: not_approved | outside_policy | budget | plan_changed | revoked
    STOPPED = "stopped"
    FAILED = "failed"              # TLS failure, unknown plan, or an unexpected error (message says which)


TERMINAL = frozenset({EngineStage.FINISHED, EngineStage.REFUSED, EngineStage.STOPPED, EngineStage.FAILED})


@dataclass(frozen=True)
class EngineStatus:
    """What the engine is doing, in words for the GUI (``message``) and fields for widgets."""

    phase: EngineStage
    message: str
    plan_sha256: str
    round_number: int | None = None
    rounds_trained: int = 0
    progress: float | None = None
    retry_in: float | None = None
    reason: str | None = None


@dataclass(frozen=True)
class EngineResult:
    phase: EngineStage
    message: str
    rounds_trained: int
    candidates: tuple[int, ...] = ()  # local model ids added to service.models by this run
    reason: str | None = None


@dataclass(frozen=True)
class EngineOptions:
    """``max_rounds``: stop after training this many rounds in this run (``once`` = 1) and settling them.
    ``candidates``: ``final`` offers only the last global version of the run (or the plan); ``every`` offers each;
    ``none`` offers none (benchmarks, the demo).
    """

    poll_timeout: float = 20.0
    max_rounds: int | None = None
    candidates: str = "final"
    retry_delays: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0, 15.0, 30.0)
    seed: int | None = None  # None: a fresh random seed per round (DP noise must not be predictable)


def _same_address(first: str, second: str) -> bool:
    from .transport import normalise_url

    try:
        return normalise_url(first) == normalise_url(second)
    except ValueError:
        return False


class _StopRequested(Exception):
    pass


class _RetryNow(Exception):
    """Start the step again at once (after a pause interrupted training)."""


@dataclass
class _Run:
    trained: int = 0
    candidates: list[int] = field(default_factory=list)
    since: str | None = None
    failures: int = 0
    operator_approved: bool = False


class ParticipationEngine:
    """Takes part in plan ``plan_sha256`` for the node in ``home`` (see the module docstring).

    ``on_status(EngineStatus)`` is called on every change of phase and for training progress; ``connection`` may
    be given (tests, a recorder) or is opened from the node's membership on ``run()``.
    """

    def __init__(self, service: NodeService, plan_sha256: str, *, home: Path | None = None,
                 options: EngineOptions = EngineOptions(), on_status: Callable[[EngineStatus], None] | None = None,
                 connection: FederationConnection | None = None, uploader: UpdateUploader | None = None,
                 connect_options: dict[str, Any] | None = None) -> None:
        self.service, self.plan_sha256 = service, plan_sha256.lower()
        self.home = Path(home) if home is not None else Path(service.home)
        self.options = options
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
        self._arrays: dict[tuple[int, int], tuple[Any, Any]] = {}
        self._run = _Run()

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

    def _emit(self, phase: EngineStage, message: str, **fields: Any) -> None:
        self.status = EngineStatus(phase, message, self.plan_sha256, rounds_trained=self._run.trained, **fields)
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
                self.connection = connect(self.service, self.home, **self._connect_options)
            while True:
                self._check_stop_or_pause()
                try:
                    if not self._approved_by_operator():
                        continue
                    if self._step():
                        return self._finish(EngineStage.FINISHED, self._finished_message())
                    self._run.failures = 0
                except CoordinatorUnreachable as error:
                    self._wait_before_retry(str(error))
                except _RetryNow:
                    continue
        except (_StopRequested, Stopped):
            return self._finish(EngineStage.STOPPED, "Stopped. Any round in progress resumes on the next start.")
        except ParticipationRefused as error:
            return self._finish(EngineStage.REFUSED, str(error), reason=error.reason)
        except NotAuthorised as error:
            reason = "revoked" if "revoked" in str(error).lower() else "not_authorised"
            if reason == "revoked":
                self.service.membership.set_status(MembershipStatus.REVOKED)
            return self._finish(EngineStage.REFUSED, str(error), reason=reason)
        except TlsFailure as error:
            return self._finish(EngineStage.FAILED, str(error), reason="tls")
        except ClientError as error:
            return self._finish(EngineStage.FAILED, str(error))
        except Exception as error:  # the GUI shows it; the log keeps the traceback (no data values in it)
            log.exception("The participation engine failed")
            return self._finish(EngineStage.FAILED, f"Training stopped after an unexpected error: {error}")
        finally:
            if owned and self.connection is not None:  # idle keep-alive connections would hold the server up
                self.connection.close()
                self.connection = None

    def _approved_by_operator(self) -> bool:
        """Once per run: learn (and store) whether the operator approved this node; wait while pending."""
        if self._run.operator_approved:
            return True
        from .enrolment import refresh_status

        assert self.connection is not None
        status = refresh_status(self.service, self.connection)
        if status == "revoked":
            raise NotAuthorised("The federation operator revoked this node's enrolment.", 403, "revoked")
        if status == "approved":
            self._run.operator_approved = True
            return True
        delays = self.options.retry_delays
        delay = delays[min(self._run.failures, len(delays) - 1)]
        self._run.failures += 1
        self._emit(EngineStage.WAITING, f"Waiting for the federation operator to approve this node; asking again in "
                   f"{delay:g} s.", retry_in=delay)
        if self._stop.wait(delay):
            raise _StopRequested
        return False

    def _finish(self, phase: EngineStage, message: str, reason: str | None = None) -> EngineResult:
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

    def _wait_before_retry(self, why: str) -> None:
        delays = self.options.retry_delays
        delay = delays[min(self._run.failures, len(delays) - 1)]
        self._run.failures += 1
        self._emit(EngineStage.UNREACHABLE, f"Coordinator unreachable, retrying in {delay:g} s. ({why})",
                   retry_in=delay)
        if self._stop.wait(delay):
            raise _StopRequested

    # -- one step -------------------------------------------------------------------------------------------------

    @property
    def client(self):  # type: ignore[no-untyped-def]
        assert self.connection is not None
        return self.connection.client

    def _step(self) -> bool:
        """One poll and what follows from it; True when the run is over."""
        self._emit(EngineStage.WAITING, "Waiting for the next round.", round_number=None)
        wait = self.client.wait(self.plan_sha256, self._run.since, self.options.poll_timeout)
        self._run.since = wait.round.revision if wait.round is not None else "finished"
        self._settle(wait.round)
        limit = self.options.max_rounds
        if wait.plan_status == "finished" or wait.round is None:
            self._offer_latest()
            return True
        current = wait.round
        record = self.state.rounds.get(current.round_id)
        if limit is not None and self._run.trained >= limit and not self._unsettled():
            self._offer_latest()
            return True
        if current.state in ACCEPTING and (limit is None or self._run.trained < limit or
                                           (record is not None and record.stage == "trained")):
            if record is None:
                self._participate(current)
            elif record.stage == "trained":
                self._deliver(current, record)
        elif record is not None and record.stage in ("uploaded",):
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
            if current is not None and current.round_id == record.round_id and current.state not in SETTLED:
                continue
            info = current if current is not None and current.round_id == record.round_id else \
                self.client.round(record.round_id)
            if info.state not in SETTLED:
                continue
            record.result_version = info.result_version if info.state == "complete" else None
            masked = self._forget_secure_state(record.round_id)
            delivered = record.stage == "uploaded" or (masked and info.state == "complete")
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

        membership = self.connection.membership if self.connection is not None else None
        if membership is None:
            return False
        return forget_finished_round(self.home, membership.federation, self.plan_sha256, round_id)

    def _offer_latest(self) -> None:
        """Offer the newest global version produced by a round we contributed to, once."""
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
        try:
            local_id = self._build_candidate(version, record)
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

    def _build_candidate(self, version: int, record: RoundRecord) -> int | None:
        import torch

        from pneumodesk.model import load_bundle
        from pneumodesk.training.acceptance import candidate_bundle, evaluate_bundle_locally

        approval = self.service.approvals.active(self.plan_sha256)
        if approval is None:  # withdrawn meanwhile: nothing more is done for this plan
            return None
        plan = TrainingPlan.from_json_bytes(approval.plan_json)
        data = self.client.weights(version)
        state = {k: torch.from_numpy(v.copy()) for k, v in state_dict_from_bytes(data).items()}
        validation = self.service.datasets.files(approval.dataset_id, "validation")
        base = self._base_card(plan)
        out = self.home / "federation" / "candidates" / f"{self.plan_sha256[:16]}-v{version}"
        if out.exists():
            import shutil

            shutil.rmtree(out)
        folder, metrics = candidate_bundle(
            state, base, validation, out, version=f"federated-v{version}",
            training={"plan_sha256": self.plan_sha256, "global_version": version, "round": record.number,
                      "federated": True})
        try:
            active = load_bundle(self.service.models.active_bundle_dir())
            baseline = evaluate_bundle_locally(active, validation)
        except Exception as error:  # the current model may not load (e.g. removed file): say so beside the figures
            baseline = {"error": f"the current model could not be evaluated ({error})"}
        model = self.service.models.add_candidate(folder, source=f"federation plan {self.plan_sha256[:12]}",
                                                  plan_sha256=self.plan_sha256, round_number=record.number,
                                                  global_version=version, metrics=metrics,
                                                  baseline_metrics=baseline)
        import shutil

        shutil.rmtree(out, ignore_errors=True)  # the registry keeps its own copy
        return int(model.id)

    def _base_card(self, plan: TrainingPlan):  # type: ignore[no-untyped-def]
        """A card describing the plan's architecture: the active model's when it matches, else a minimal one."""
        from pneumodesk.imaging import PREPROCESSING_VERSION
        from pneumodesk.model import ModelCard, OperatingPoint, load_bundle

        try:
            active = load_bundle(self.service.models.active_bundle_dir()).card
            if active.architecture == plan.architecture and active.input_size == plan.input_size:
                return active
        except Exception:
            pass
        return ModelCard(name=f"PneumoDesk federated model ({plan.name})", version="0", architecture=plan.architecture,
                         input_size=plan.input_size, preprocessing_version=PREPROCESSING_VERSION, temperature=1.0,
                         operating_points={"balanced": OperatingPoint(0.5, 0.0, 0.0)},
                         default_operating_point="balanced", validation={}, training={},
                         intended_use="Decision support for pneumonia on chest X-rays; not a diagnosis.",
                         limitations=[], created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))

    # -- one round ------------------------------------------------------------------------------------------------

    def _checked(self) -> tuple[Any, TrainingPlan, Any, int, float | None]:
        """(approval, plan, cost, this plan's round count on the dataset so far, ε to record) — or a refusal."""
        from pneumodesk.node import PrivacyBudgetExceeded, plan_violations
        from pneumodesk.training.privacy import ledger_increment, plan_privacy_cost

        approval = self.service.approvals.active(self.plan_sha256)
        if approval is None:
            raise ParticipationRefused("No admin has approved this plan on this node (or the approval was "
                                       "withdrawn); nothing was trained.", "not_approved")
        plan = TrainingPlan.from_json_bytes(approval.plan_json)
        if plan.sha256 != self.plan_sha256:
            raise ParticipationRefused("The approved plan text does not match the plan's hash; the plan needs a "
                                       "new approval.", "plan_changed")
        membership = self.connection.membership if self.connection else None
        if membership is not None and not _same_address(approval.coordinator_url, membership.coordinator_url):
            raise ParticipationRefused("The plan was approved for another coordinator than the one this node is "
                                       "enrolled with.", "not_approved")
        examples = len(self.service.datasets.files(approval.dataset_id, "training"))
        if examples == 0:
            raise ParticipationRefused("The approved dataset has no training images left.", "no_dataset")
        cost = plan_privacy_cost(plan, examples)
        policy = self.service.policy.get()
        reasons = plan_violations(policy, plan, None if cost is None else cost.epsilon_total)
        if reasons:
            raise ParticipationRefused("The node policy no longer allows this plan: " + "; ".join(reasons) + ".",
                                       "outside_policy")
        done = sum(1 for e in self.service.ledger.entries(approval.dataset_id) if e.plan_sha256 == self.plan_sha256)
        epsilon = None
        if cost is not None:
            if done >= plan.rounds:
                raise ParticipationRefused("This node has already trained every round this plan asked for.",
                                           "budget")
            epsilon = ledger_increment(cost, done + 1)
            try:
                self.service.ledger.ensure_room(approval.dataset_id, epsilon, policy.epsilon_cap_per_dataset)
            except PrivacyBudgetExceeded as error:
                raise ParticipationRefused(str(error), "budget") from None
        return approval, plan, cost, done, epsilon

    def _participate(self, current: RoundInfo) -> None:
        self._emit(EngineStage.CHECKING, f"Round {current.number}: checking approval, policy and privacy budget.",
                   round_number=current.number)
        approval, plan, cost, _done, epsilon = self._checked()
        try:
            joined = self.client.join(self.plan_sha256)
        except Refused as error:
            if error.status == 409:  # the round stopped accepting meanwhile: wait for the next one
                return
            raise
        number = joined.number
        self._emit(EngineStage.DOWNLOADING, f"Round {number}: downloading the global model.", round_number=number)
        weights = self.client.weights(joined.model_version, joined.model_sha256)
        inputs, labels = self._training_arrays(approval.dataset_id, plan.input_size)
        update = self._train(weights, inputs, labels, plan, cost, number)
        data = state_dict_to_bytes(update.state)
        record = RoundRecord(joined.round_id, number, "trained", joined.model_version, int(update.examples),
                             sha256_hex(data))
        if cost is not None and epsilon is not None:
            self.service.ledger.record(approval.dataset_id, self.plan_sha256, number, epsilon, cost.delta,
                                       cost.noise_multiplier, cost.sample_rate, cost.steps_per_round)
        self.store.save_update(joined.round_id, data)
        self.state.rounds[joined.round_id] = record
        self.store.save(self.state)
        self._run.trained += 1
        self._deliver(joined, record, data)

    def _training_arrays(self, dataset_id: int, input_size: int) -> tuple[Any, Any]:
        from pneumodesk.training.local_round import load_training_arrays

        key = (dataset_id, input_size)
        if key not in self._arrays:
            self._emit(EngineStage.TRAINING, "Reading the approved dataset's training images.", progress=0.0)
            files = self.service.datasets.files(dataset_id, "training")
            self._arrays = {key: load_training_arrays(files, input_size)}
        return self._arrays[key]

    def _train(self, weights: bytes, inputs: Any, labels: Any, plan: TrainingPlan, cost: Any, number: int) -> Any:
        import torch

        from pneumodesk.training.local_round import TrainingCancelled, train_local_round

        initial = {k: torch.from_numpy(v.copy()) for k, v in state_dict_from_bytes(weights).items()}
        seed = self.options.seed if self.options.seed is not None else secrets.randbits(31)
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

    def _uploader(self, current: RoundInfo) -> UpdateUploader:
        """The caller's strategy, else secure aggregation when the approved plan (or the round) has it on."""
        if self.uploader is not None:
            return self.uploader
        approval = self.service.approvals.active(self.plan_sha256)
        plan = TrainingPlan.from_json_bytes(approval.plan_json) if approval is not None else None
        if current.phase == "plain_input" and (plan is None or not plan.secure_aggregation):
            return PlainUpload()
        from .secure_upload import secure_uploader

        def on_phase(step: str) -> None:
            self._emit(EngineStage.UPLOADING, f"Round {current.number}: secure aggregation — {step.replace('_', ' ')}.",
                       round_number=current.number)

        return secure_uploader(self.home, self.connection, plan=plan, poll_timeout=self.options.poll_timeout,
                               on_phase=on_phase)

    def _deliver(self, current: RoundInfo, record: RoundRecord, data: bytes | None = None) -> None:
        self._check_stop_or_pause()  # a stop here keeps the trained update for the next start
        data = data if data is not None else self.store.load_update(record.round_id)
        if data is None or sha256_hex(data) != record.update_sha256:  # lost file: the round is missed, ε stays spent
            record.stage = "missed"
            self.store.save(self.state)
            return
        self._emit(EngineStage.UPLOADING, f"Round {record.number}: sending the model update.",
                   round_number=record.number)
        update = PreparedUpdate(data, record.update_sha256, record.examples,
                                arrays=lambda: state_dict_from_bytes(data))
        try:
            receipt = self._uploader(current).deliver(self.client, current, update,
                                            self._should_stop)
        except Refused as error:
            if error.status in (404, 409):  # the round closed before our update arrived
                record.stage = "missed"
                self.store.drop_update(record.round_id)
                self.store.save(self.state)
                self._emit(EngineStage.WAITING, f"Round {record.number} closed before the update arrived: "
                           f"{error}", round_number=record.number)
                return
            raise
        record.stage = "uploaded"
        self.store.drop_update(record.round_id)
        self.store.save(self.state)
        self._emit(EngineStage.SUBMITTED, f"Round {record.number}: update sent ({receipt.round_state}).",
                   round_number=record.number)
