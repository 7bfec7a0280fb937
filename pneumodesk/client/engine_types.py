"""The participation engine's public values: ``EngineOptions`` in, ``EngineStatus`` while it runs, ``EngineResult``
at the end, and the ``EngineStage`` each of them names."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Literal

from pneumodesk.federation.vocabulary import RefusalReason

CandidatePolicy = Literal["final", "every", "none"]


class EngineStage(enum.StrEnum):
    STARTING = "starting"
    WAITING = "waiting"            # for the plan's next round (long poll), or for the operator's approval
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
    REFUSED = "refused"            # reason: a RefusalReason
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
    reason: RefusalReason | None = None


@dataclass(frozen=True)
class EngineResult:
    phase: EngineStage
    message: str
    rounds_trained: int
    candidates: tuple[int, ...] = ()  # local model ids added to service.models by this run
    reason: RefusalReason | None = None


@dataclass(frozen=True)
class EngineOptions:
    """``max_rounds``: stop after training this many rounds in this run (``once`` = 1) and settling them.
    ``candidates``: ``final`` offers only the last global version of the run (or the plan); ``every`` offers each;
    ``none`` offers none (benchmarks, the demo). ``retry_delays``: the ``Backoff`` while the coordinator is
    unreachable or the operator has not approved the node yet.
    """

    poll_timeout: float = 20.0
    max_rounds: int | None = None
    candidates: CandidatePolicy = "final"
    retry_delays: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0, 15.0, 30.0)
    seed: int | None = None  # None: a fresh random seed per round (DP noise never follows it)
