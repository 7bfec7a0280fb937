"""What nodes and operators ask of rounds: a plan's current round, joining, status, uploads and the periodic sweep.

The round state machine itself lives in ``orchestrator`` (plain FedAvg) and ``secure_rounds`` (secure aggregation);
this service answers questions about rounds and hands uploads and deadlines to them.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from pneumodesk.federation.messages import PlanWait, RoundInfo, UploadReceipt
from pneumodesk.federation.vocabulary import ACCEPTS_SUBMISSIONS, PlanStatus, RoundPhase

from ..db import ModelVersion, Plan, Round, Submission, get_row
from ..errors import Conflict, Forbidden, NotFound
from ..orchestrator import RoundOrchestrator
from ..secure_rounds import SecureRounds

#: Room for a safetensors header (tensor names, metadata) beyond the model's own size, and for a masked input's
#: framing beyond its words.
UPLOAD_SLACK_BYTES = 1024 * 1024
#: Phases in which a node may still join a round: before any key exchange (secure) or any time (plain).
JOINABLE_PHASES = frozenset({RoundPhase.PLAIN_INPUT, RoundPhase.ADVERTISE_KEYS})


class RoundService:
    def __init__(self, sessions: sessionmaker[Session], orchestrator: RoundOrchestrator, secure: SecureRounds) -> None:
        self._sessions, self._orchestrator, self._secure = sessions, orchestrator, secure

    def plan_state(self, sha: str) -> PlanWait:
        """The plan's current round (``None`` once finished); ``changed`` is left False for the caller to set."""
        with self._sessions() as session:
            plan = session.get(Plan, sha)
            if plan is None:
                raise NotFound("There is no plan with this sha256.")
            round_ = self._orchestrator.current_round(session, sha)
            finished = plan.status == PlanStatus.FINISHED or round_ is None
            info = None if finished or round_ is None else self._orchestrator.info(session, round_)
            return PlanWait(changed=False, plan_status=PlanStatus(plan.status), round=info)

    def join(self, sha: str, node_id: str) -> RoundInfo:
        """The plan's round that accepts this node's update now, or ``Conflict`` telling it to wait."""
        state = self.plan_state(sha)
        if state.round is None:
            raise Conflict("This plan is finished; there is no round to join.")
        if state.round.state not in ACCEPTS_SUBMISSIONS:
            raise Conflict(f"Round {state.round.number} is {state.round.state}; wait for the next round.")
        if state.round.phase not in JOINABLE_PHASES:  # secure round: keys already exchanged
            raise Conflict(f"Round {state.round.number} has closed its key exchange; wait for the next round.")
        return state.round

    def status(self, round_id: int) -> RoundInfo:
        with self._sessions() as session:
            round_ = session.get(Round, round_id)
            if round_ is None:
                raise NotFound(f"There is no round {round_id}.")
            return self._orchestrator.info(session, round_)

    def all(self) -> list[RoundInfo]:
        with self._sessions() as session:
            return [self._orchestrator.info(session, r) for r in session.scalars(select(Round).order_by(Round.id))]

    def submit_update(self, round_id: int, node_id: str, data: bytes | bytearray | memoryview, examples: int,
                      claimed_sha256: str | None, *, received_sha256: str | None = None) -> UploadReceipt:
        return self._orchestrator.submit_update(round_id, node_id, data, examples, claimed_sha256,
                                                received_sha256=received_sha256)

    def upload_allowance(self, round_id: int, node_id: str, phase: RoundPhase) -> int:
        """Before a byte of an upload is read: the largest body this node may send for ``phase`` of this round.

        Refuses (404/409/403) a round that does not exist, does not accept this phase now, or (secure) a node not in
        the round's key roster; a node that already sent this phase may retry (its retry is answered as before).
        The limit comes from the round's model: its size (plain), twice its size (masked input: up to 64-bit words
        for 32-bit weights), plus ``UPLOAD_SLACK_BYTES``."""
        with self._sessions() as session:
            round_ = session.get(Round, round_id)
            if round_ is None:
                raise NotFound(f"There is no round {round_id}.")
            model_bytes = get_row(session, ModelVersion, round_.model_version).size_bytes
            limit = (model_bytes if phase == RoundPhase.PLAIN_INPUT else 2 * model_bytes) + UPLOAD_SLACK_BYTES
            sent = select(Submission.id).where(Submission.round_id == round_id, Submission.node_id == node_id)
            if session.scalars(sent.where(Submission.phase == phase.value)).first() is not None:
                return limit
            if round_.state not in ACCEPTS_SUBMISSIONS:
                raise Conflict(f"Round {round_.number} is {round_.state} and accepts no more updates.")
            if phase == RoundPhase.PLAIN_INPUT and round_.phase != phase.value:
                raise Conflict(f"Round {round_.number} uses secure aggregation: only masked inputs are accepted.")
            if round_.phase != phase.value:
                raise Conflict(f"Round {round_.number} is in phase {round_.phase}, not {phase.value}.")
            if phase != RoundPhase.PLAIN_INPUT and session.scalars(
                    sent.where(Submission.phase == RoundPhase.SHARE_KEYS.value)).first() is None:
                raise Forbidden("This node is not in the round's key roster; it cannot send a masked input.")
            return limit

    def sweep(self) -> None:
        """Settle rounds: deadlines passed and aggregations interrupted (plain, then secure)."""
        self._orchestrator.sweep()
        self._secure.sweep()
