"""Checks the node applies to the coordinator's answers beyond their JSON schema (``federation.messages``): the
answer is about what was asked (this plan, this round), its identifiers are safe to put in a URL or a file name,
and its counts are possible.

Invariant: each check raises ``ProtocolError`` (a plain sentence) before anything in the answer is used or stored;
the schemas themselves are shared with the coordinator, so the node's stricter reading lives here.
"""

from __future__ import annotations

import json
import re

from pneumodesk.federation.errors import PlanError
from pneumodesk.federation.messages import PlanSummary, PlanWait, RoundInfo, UploadReceipt
from pneumodesk.federation.plan import TrainingPlan

from .errors import ProtocolError

SHA256_PATTERN = re.compile(r"[0-9a-f]{64}")
# Node ids travel in URL paths, nonces in signed bytes, tokens in headers: plain ASCII without separators.
IDENTIFIER_PATTERN = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._:-]{0,127}")
NONCE_PATTERN = re.compile(r"[A-Za-z0-9._~+/=-]{1,128}")
TOKEN_PATTERN = re.compile(r"[A-Za-z0-9._~+/=-]{1,4096}")
LARGEST_ID = 2**53  # what JSON numbers hold exactly in every client


def is_sha256(text: str) -> bool:
    return SHA256_PATTERN.fullmatch(text) is not None


def check_sha256(text: str, what: str) -> str:
    if not is_sha256(text):
        raise ProtocolError(f"The coordinator sent a {what} that is not a sha256 (64 lowercase hex digits).")
    return text


def check_identifier(text: str, what: str) -> str:
    if IDENTIFIER_PATTERN.fullmatch(text) is None:
        raise ProtocolError(f"The coordinator sent a {what} that is not a plain identifier.")
    return text


def check_plain_text(text: str, what: str, longest: int = 256) -> str:
    """``text`` when it is 1..``longest`` printable characters that encode as UTF-8 (no lone surrogates)."""
    if not 1 <= len(text) <= longest or not text.isprintable():
        raise ProtocolError(f"The coordinator sent a {what} that is not plain text.")
    try:
        text.encode()
    except UnicodeEncodeError:
        raise ProtocolError(f"The coordinator sent a {what} that is not plain text.") from None
    return text


def _check_count(value: int, what: str, least: int) -> None:
    if not least <= value <= LARGEST_ID:
        raise ProtocolError(f"The coordinator sent an impossible {what} ({value}).")


def check_round(info: RoundInfo, *, plan_sha256: str | None = None, round_id: int | None = None) -> RoundInfo:
    """``info`` when it is a possible round of ``plan_sha256`` (and is round ``round_id``, when given)."""
    check_sha256(info.plan_sha256, "round's plan identity")
    check_sha256(info.model_sha256, "round's model identity")
    if plan_sha256 is not None and info.plan_sha256 != plan_sha256.lower():
        raise ProtocolError("The coordinator answered about a round of another plan than the one asked for.")
    if round_id is not None and info.round_id != round_id:
        raise ProtocolError(f"The coordinator answered about round {info.round_id} when asked about round {round_id}.")
    _check_count(info.round_id, "round id", 1)
    _check_count(info.number, "round number", 1)
    _check_count(info.model_version, "model version", 0)
    _check_count(info.updates_received, "number of updates received", 0)
    _check_count(info.min_nodes, "minimum number of nodes", 1)
    if info.result_version is not None:
        _check_count(info.result_version, "result version", 0)
    if not 1 <= len(info.revision) <= 256:
        raise ProtocolError("The coordinator sent a round revision of an impossible length.")
    return info


def check_wait(wait: PlanWait, plan_sha256: str) -> PlanWait:
    if wait.round is not None:
        check_round(wait.round, plan_sha256=plan_sha256)
    return wait


def check_receipt(receipt: UploadReceipt, round_id: int, update_sha256: str, examples: int) -> UploadReceipt:
    """``receipt`` when it acknowledges exactly the update sent: this round, these bytes, this example count.
    Anything else means the update the node recorded ε for was not the one counted; the node sends it again."""
    if receipt.round_id != round_id:
        raise ProtocolError(f"The coordinator acknowledged an update for round {receipt.round_id} when it was sent "
                            f"for round {round_id}; the update will be sent again.")
    if receipt.update_sha256.lower() != update_sha256.lower():
        raise ProtocolError("The coordinator acknowledged other bytes than the update sent (sha256 mismatch); the "
                            "update will be sent again.")
    if receipt.examples != examples:
        raise ProtocolError(f"The coordinator acknowledged {receipt.examples} training examples when the update "
                            f"was sent with {examples}; the update will be sent again.")
    return receipt


def check_plan_summary(summary: PlanSummary, plan_sha256: str | None = None) -> PlanSummary:
    check_sha256(summary.plan_sha256, "plan identity")
    if plan_sha256 is not None and summary.plan_sha256 != plan_sha256.lower():
        raise ProtocolError("The coordinator answered with another plan than the one asked for.")
    return summary


def published_plan(summary: PlanSummary) -> TrainingPlan:
    """The plan a summary publishes, parsed as an admin reviews it: ``PlanError`` when its text is not a valid plan,
    ``ProtocolError`` when the text does not hash to the identity the coordinator gave it."""
    try:
        text = json.dumps(summary.plan, allow_nan=False)
    except ValueError:  # NaN or Infinity: not JSON, so not a plan either
        raise PlanError("The training plan is not valid: it holds numbers that are not finite.") from None
    plan = TrainingPlan.from_json_bytes(text)
    if plan.sha256 != summary.plan_sha256:
        raise ProtocolError("The plan's content does not match its identity; it was not shown.")
    return plan
