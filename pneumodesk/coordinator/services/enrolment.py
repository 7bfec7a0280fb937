"""Node enrolment and identity: one-time codes, the operator's decisions, challenge–response tokens.

Invariants: enrolment codes are stored only as their sha256 and work once, before they expire; a revoked node can
never be approved again (it must enrol anew); a challenge is single-use whatever the outcome; ``authenticate``
re-reads the node on every call, so a revocation takes effect at once. Enrolments and decisions are audited in the
transaction that makes them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import threading
import time

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from pneumodesk.federation.messages import ChallengeResponse, EnrolmentCode, NodeInfo, TokenResponse, challenge_bytes
from pneumodesk.federation.vocabulary import MembershipStatus

from ..audit import SYSTEM, AuditLog
from ..auth import Claims, TokenAuthority, from_b64url, verify_node_signature
from ..config import CoordinatorConfig
from ..db import Challenge, Node, utcnow
from ..db import EnrolmentCode as CodeRow
from ..errors import Conflict, Forbidden, InvalidInput, NodePending, NodeRevoked, NotFound, Unauthorised
from ..views import node_info

#: Unambiguous upper-case letters and digits (no 0/O, 1/I/L), so a code read over the phone is typed right.
_CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
_CHALLENGE_SWEEP_SECONDS = 60


def new_enrolment_code(groups: int = 5, size: int = 5) -> str:
    """A one-time code like ``K7QM2-9XPDA-…``: 5×5 symbols ≈ 124 bits; never starts with ``-``, so a command line
    cannot mistake it for an option."""
    return "-".join("".join(secrets.choice(_CODE_ALPHABET) for _ in range(size)) for _ in range(groups))


class EnrolmentService:
    """``lock`` is the rounds' lock: node decisions are serialised with what rounds do."""

    def __init__(self, sessions: sessionmaker[Session], audit: AuditLog, tokens: TokenAuthority,
                 config: CoordinatorConfig, lock: threading.RLock) -> None:
        self._sessions, self._audit, self._tokens, self._config = sessions, audit, tokens, config
        self._lock = lock
        self._challenges_swept = 0.0

    def create_code(self, hours: float | None = None, *, actor: str = SYSTEM) -> EnrolmentCode:
        code = new_enrolment_code()
        expires = utcnow() + dt.timedelta(hours=hours or self._config.enrolment_code_hours)
        with self._sessions() as session:
            row = CodeRow(code_sha256=hashlib.sha256(code.encode()).hexdigest(), expires=expires, created=utcnow())
            session.add(row)
            session.flush()
            self._audit.add(session, actor, "enrolment_code.create", f"code #{row.id}",
                            {"expires": expires.isoformat()})
            session.commit()
        return EnrolmentCode(code=code, expires=expires.isoformat())

    def enrol(self, code: str, name: str, public_key_b64: str) -> NodeInfo:
        public_key = from_b64url(public_key_b64)
        if len(public_key) != 32:
            raise InvalidInput("The node public key must be a raw 32-byte Ed25519 key, base64url-encoded.")
        with self._lock, self._sessions() as session:
            row = session.scalars(select(CodeRow).where(
                CodeRow.code_sha256 == hashlib.sha256(code.encode()).hexdigest()).with_for_update()).first()
            if row is None or row.used is not None or row.expires <= utcnow():
                raise Forbidden(
                    "The enrolment code is unknown, already used or expired; ask the operator for a new one."
                )
            if session.scalars(select(Node).where(Node.public_key == public_key)).first():
                raise Conflict("A node with this public key is already enrolled.")
            row.used = utcnow()
            node = Node(id=f"node-{secrets.token_hex(8)}", name=name, public_key=public_key,
                        status=MembershipStatus.PENDING.value, created=utcnow())
            session.add(node)
            self._audit.add(session, f"node:{node.id}", "node.enrol", node.id,
                            {"name": name, "public_key_sha256": hashlib.sha256(public_key).hexdigest(),
                             "code": f"code #{row.id}"})
            session.commit()
            return node_info(node)

    def list_nodes(self) -> list[NodeInfo]:
        with self._sessions() as session:
            return [node_info(n) for n in session.scalars(select(Node).order_by(Node.created)).all()]

    def approve(self, node_id: str, *, actor: str = SYSTEM) -> NodeInfo:
        return self._decide(node_id, MembershipStatus.APPROVED, actor)

    def revoke(self, node_id: str, *, actor: str = SYSTEM) -> NodeInfo:
        return self._decide(node_id, MembershipStatus.REVOKED, actor)

    def _decide(self, node_id: str, status: MembershipStatus, actor: str) -> NodeInfo:
        with self._lock, self._sessions() as session:
            node = session.get(Node, node_id)
            if node is None:
                raise NotFound(f"There is no node {node_id!r}.")
            if node.status == MembershipStatus.REVOKED and status == MembershipStatus.APPROVED:
                raise Conflict("A revoked node cannot be approved again; it must enrol anew with a new code.")
            node.status, node.decided = status.value, utcnow()
            action = "node.approve" if status == MembershipStatus.APPROVED else "node.revoke"
            self._audit.add(session, actor, action, node_id, {"name": node.name})
            session.commit()
            return node_info(node)

    def new_challenge(self, node_id: str) -> ChallengeResponse:
        nonce = secrets.token_urlsafe(24)
        expires = utcnow() + dt.timedelta(seconds=self._config.challenge_seconds)
        with self._sessions() as session:
            node = session.get(Node, node_id)
            if node is None or node.status == MembershipStatus.REVOKED:
                raise NotFound("There is no enrolled node with this id.")
            session.add(Challenge(nonce=nonce, node_id=node_id, expires=expires))
            session.commit()
        return ChallengeResponse(nonce=nonce, expires=expires.isoformat(), audience=self._config.node_audience)

    def node_token(self, node_id: str, nonce: str, signature_b64: str) -> TokenResponse:
        """Exchange a signed, unused, unexpired challenge for a short-lived node token."""
        signature = from_b64url(signature_b64)
        with self._sessions() as session:
            challenge = session.get(Challenge, nonce)
            if challenge is not None:
                session.delete(challenge)  # single use, whatever happens next
                session.commit()
            node = session.get(Node, node_id)
        if challenge is None or challenge.node_id != node_id or challenge.expires <= utcnow() or node is None:
            raise Unauthorised("The challenge is unknown, used or expired; request a new one.")
        message = challenge_bytes(self._config.node_audience, node_id, nonce)
        if not verify_node_signature(node.public_key, message, signature):
            raise Unauthorised("The challenge signature does not match this node's enrolled key.")
        _require_approved(node)
        seconds = self._config.node_token_seconds
        token = self._tokens.issue("node", f"node:{node_id}", seconds, node_id=node_id)
        return TokenResponse(access_token=token, expires_in=seconds)

    def authenticate(self, token: str) -> str:
        """The node id, if the token is valid and the node is approved right now (revocation applies at once)."""
        return self.authorise(self._tokens.verify(token, "node"))

    def authorise(self, claims: Claims) -> str:
        """``authenticate`` for claims already verified as a node token's."""
        node_id = claims.node_id
        if node_id is None:  # TokenAuthority.verify refuses node tokens without one; kept for the type
            raise Unauthorised("This token names no node.")
        with self._sessions() as session:
            node = session.get(Node, node_id)
        _require_approved(node)
        return node_id

    def sweep_challenges(self) -> None:
        """Drop expired challenges, at most once a minute."""
        if time.monotonic() - self._challenges_swept > _CHALLENGE_SWEEP_SECONDS:
            self._challenges_swept = time.monotonic()
            with self._sessions() as session:
                session.execute(delete(Challenge).where(Challenge.expires <= utcnow()))
                session.commit()


def _require_approved(node: Node | None) -> None:
    if node is None:
        raise Unauthorised("This node is not enrolled with this coordinator.")
    if node.status == MembershipStatus.REVOKED:
        raise NodeRevoked("This node's enrolment was revoked by the federation operator.")
    if node.status != MembershipStatus.APPROVED:
        raise NodePending("This node is awaiting approval by the federation operator.")
