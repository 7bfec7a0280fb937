"""Secure aggregation as the participation engine's upload strategy: the coordinator only ever sees the sum.

One round, in the order the coordinator's phases move (each phase change arrives by the plan's long poll):
advertise two fresh round keys signed with the node key → fetch the key roster (checking every signature against
the enrolled identity keys) → send the encrypted Shamir shares → fetch the shares meant for this node → send the
masked input (delta = local − global weights, with the example count) → sign the list of survivors U3 with the node
key (once per round) → answer the unmasking request, only if at least t survivors signed that same list.

Invariants:
- a fresh ``SecAggNode`` per round; its state (secrets inside) is written, encrypted, under the node home *before*
  each message leaves, so a node that crashes or loses an answer repeats exactly the same message after a restart
  and never reveals conflicting shares or masks a second, different update;
- the state is sealed with AES-256-GCM under a random 32-byte key in ``home/secrets/secagg-state.key`` (folder 0700,
  file 0600) and bound to the round and node (associated data); it is deleted when the round is over — ended,
  refused or closed — and replaced by a tombstone (``SecureStateStore.bury``): a round with a tombstone is never
  begun again, so a later run cannot mask the same update under fresh keys in the same round;
- the node refuses a round that lists its own identity key wrongly, a roster whose keys are not signed by their
  nodes' enrolled identity keys (``KeySubstitutionDetected``), a changed identity key of a node it has seen before
  (pinned in ``home/federation/peer-identity-keys.json``, trust on first use — and only from a roster the node
  accepted), a threshold that is not a strict majority, a second survivor list, an unmasking request without t
  valid signatures on the list this node signed (``ConsistencyCheckFailed``: the coordinator told the nodes
  different stories) and one that asks for both kinds of share of one node — each ends the run as a refusal the
  admin sees, because the coordinator is not behaving as the protocol says;
- a plan that requires secure aggregation is never uploaded in the clear: a round without the secure phases is
  refused.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import numpy as np
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import BaseModel, ValidationError

from pneumodesk.federation.messages import SHA256_HEADER, RoundInfo, UploadReceipt
from pneumodesk.federation.plan import TrainingPlan
from pneumodesk.federation.secagg import (
    ConsistencyCheckFailed,
    KeySubstitutionDetected,
    SecAggError,
    SecAggNode,
    ShareDelivery,
    SurvivorList,
    UnmaskRequest,
    UnmaskRequestRefused,
)
from pneumodesk.federation.secagg.vector import flatten_state
from pneumodesk.federation.secagg.wire import SecureReceipt, SecureRoster, path, round_key
from pneumodesk.federation.tensors import sha256_hex, state_dict_from_bytes
from pneumodesk.federation.vocabulary import (
    ACCEPTS_SUBMISSIONS,
    PHASES_SECURE,
    ErrorCode,
    RefusalReason,
    RoundPhase,
    RoundState,
)

from .api import CoordinatorClient
from .errors import KeyStoreError, ParticipationRefused, ProtocolError, Refused, Stopped
from .keys import NodeKey
from .private_files import make_private_folder, require_owner_only, write_private
from .roster_policy import RosterPolicy, RosterTooSmall
from .upload import PreparedUpdate

if TYPE_CHECKING:
    from .enrolment import FederationConnection

M = TypeVar("M", bound=BaseModel)

PURPOSE_KEYS = "secure aggregation: this round's public keys (signed)"
PURPOSE_SHARES = "secure aggregation: encrypted key shares for the other hospitals"
PURPOSE_MASKED = "secure aggregation: the masked model update (readable only as part of the sum)"
PURPOSE_CONFIRM = "secure aggregation: this node's signature on the list of surviving hospitals"
PURPOSE_UNMASK = "secure aggregation: key shares that unmask the sum"
PURPOSE_FETCH = "secure aggregation: round keys and shares from the other hospitals"
_AAD = b"pneumodesk-secagg-node-state-v1"


class SecureStateStore:
    """A node's secure-aggregation state per round, sealed with AES-256-GCM (see the module docstring)."""

    def __init__(self, home: Path) -> None:
        self.folder = Path(home) / "federation" / "secagg"
        self.key_path = Path(home) / "secrets" / "secagg-state.key"

    def _key(self) -> bytes:
        if not self.key_path.exists():
            make_private_folder(self.key_path.parent)
            write_private(self.key_path, secrets.token_bytes(32))
        require_owner_only(self.key_path)
        key = self.key_path.read_bytes()
        if len(key) != 32:
            raise KeyStoreError(f"{self.key_path} is damaged; delete it (the round in progress will be missed).")
        return key

    def _file(self, protocol_round: str) -> Path:
        return self.folder / (hashlib.sha256(protocol_round.encode()).hexdigest()[:32] + ".enc")

    def save(self, protocol_round: str, node: SecAggNode, sent: list[str]) -> None:
        document = json.dumps({"node": node.to_bytes().decode(), "sent": sent}).encode()
        nonce = secrets.token_bytes(12)
        sealed = AESGCM(self._key()).encrypt(nonce, document, _AAD + protocol_round.encode())
        write_private(self._file(protocol_round), nonce + sealed)

    def load(self, protocol_round: str) -> tuple[SecAggNode, list[str]] | None:
        try:
            data = self._file(protocol_round).read_bytes()
        except FileNotFoundError:
            return None
        try:
            document = json.loads(AESGCM(self._key()).decrypt(data[:12], data[12:], _AAD + protocol_round.encode()))
            return SecAggNode.from_bytes(document["node"].encode()), list(document["sent"])
        except (InvalidTag, ValueError, KeyError, ValidationError):
            raise KeyStoreError("The saved secure-aggregation state of this round cannot be read; it was changed "
                                "or belongs to another node.") from None

    def drop(self, protocol_round: str) -> None:
        self._file(protocol_round).unlink(missing_ok=True)

    def _tombstone(self, protocol_round: str) -> Path:
        return self._file(protocol_round).with_suffix(".over")

    def bury(self, protocol_round: str) -> None:
        """End this node's part in a round for good: the tombstone is written *before* the secrets are deleted, so
        a crash in between leaves both, never neither (a round without state and without tombstone is a new one)."""
        write_private(self._tombstone(protocol_round), b"")
        self.drop(protocol_round)

    def buried(self, protocol_round: str) -> bool:
        return self._tombstone(protocol_round).exists()


class PeerKeys:
    """Enrolled identity keys of the other nodes, pinned the first time a roster naming them is accepted.

    ``check`` only reads: a roster is pinned (``pin``) after the node accepted it, so a refused roster pins nothing.
    """

    def __init__(self, home: Path) -> None:
        self.path = Path(home) / "federation" / "peer-identity-keys.json"

    def _pinned(self) -> dict[str, str]:
        try:
            pinned = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError):
            raise KeyStoreError(f"{self.path} is damaged; the pinned keys of the other hospitals are lost.") from None
        if not isinstance(pinned, dict):
            raise KeyStoreError(f"{self.path} is damaged; the pinned keys of the other hospitals are lost.")
        return pinned

    def check(self, own_id: str, own_key: bytes, keys: dict[str, bytes]) -> dict[str, str]:
        """Raise ``KeySubstitutionDetected`` unless ``keys`` lists this node's own key and no changed peer key;
        returns the keys not pinned yet (node id → base64), for ``pin`` once the roster is accepted."""
        if keys.get(own_id) != own_key:
            raise KeySubstitutionDetected("The coordinator lists another identity key for this very node; someone "
                                          "substituted keys. The round cannot be trusted.")
        pinned = self._pinned()
        changed = sorted(node for node, key in keys.items()
                         if node in pinned and pinned[node] != base64.b64encode(key).decode())
        if changed:
            raise KeySubstitutionDetected(f"The identity key of node(s) {', '.join(changed)} changed since this "
                                          "node first saw it; someone may be substituting keys.")
        return {node: base64.b64encode(key).decode() for node, key in keys.items() if node not in pinned}

    def pin(self, new: dict[str, str]) -> None:
        if new:
            write_private(self.path, json.dumps({**self._pinned(), **new}, sort_keys=True).encode())


class SecureUpload:
    """The upload strategy for plans with ``secure_aggregation`` (see the module docstring).

    ``stop_after``: a phase name (``advertise_keys`` … ``masked_input``) after whose message the node vanishes
    (raises ``Stopped``) — the demo's and tests' simulated drop-out.
    """

    name = "secure"

    def __init__(self, home: Path, key: NodeKey, node_id: str, audience: str, *, plan: TrainingPlan | None = None,
                 poll_timeout: float = 20.0, stop_after: RoundPhase | None = None,
                 on_phase: Callable[[str], None] | None = None, roster_policy: RosterPolicy | None = None) -> None:
        self.roster_policy = roster_policy  # None: read from the node store in ``home`` when a round starts
        self.home, self.key, self.node_id, self.audience, self.plan = Path(home), key, node_id, audience, plan
        self.poll_timeout, self.stop_after, self.on_phase = poll_timeout, stop_after, on_phase
        self.store, self.peers = SecureStateStore(home), PeerKeys(home)

    # -- the exchange -------------------------------------------------------------------------------------------

    def deliver(self, client: CoordinatorClient, round_info: RoundInfo, update: PreparedUpdate,
                should_stop: Callable[[], bool]) -> UploadReceipt:
        if round_info.phase not in PHASES_SECURE:
            raise ParticipationRefused("The plan requires secure aggregation but the coordinator runs this round "
                                       "without it; the update was not sent.", RefusalReason.OUTSIDE_POLICY)
        protocol_round = round_key(self.audience, round_info.plan_sha256, round_info.round_id)
        if self.store.buried(protocol_round):  # never mask the same update again under fresh keys
            raise Refused(f"This node's part in round {round_info.number} is over (it ended or was refused); it does "
                          "not take part in it again under fresh keys.", 409, ErrorCode.CONFLICT)
        loaded = self.store.load(protocol_round)
        if loaded is not None:
            node, sent = loaded
        else:
            node, sent = SecAggNode.begin(protocol_round, self.node_id, self.key.signing_key,
                                          min_nodes=self._roster_policy().smallest_round(self.plan)), []
        exchange = _Exchange(self, client, round_info, should_stop)
        try:
            receipt = self._run(exchange, protocol_round, node, sent, update)
        except (KeySubstitutionDetected, UnmaskRequestRefused, ConsistencyCheckFailed, RosterTooSmall) as error:
            self.store.bury(protocol_round)
            raise ParticipationRefused(str(error), RefusalReason.SECURE_AGGREGATION) from None
        except ParticipationRefused:
            self.store.bury(protocol_round)
            raise
        except SecAggError as error:  # the coordinator broke the protocol: this round is lost for this node
            self.store.bury(protocol_round)
            raise Refused(f"Secure aggregation failed for this round: {error}", 409, ErrorCode.CONFLICT) from None
        except Refused as error:
            if error.status in (404, 409):
                self.store.bury(protocol_round)
            raise
        self.store.bury(protocol_round)
        return receipt

    def _run(self, exchange: _Exchange, protocol_round: str, node: SecAggNode, sent: list[str],
             update: PreparedUpdate) -> UploadReceipt:
        def send(phase: RoundPhase, method: str, endpoint: str, body: bytes, purpose: str, **headers: str) -> None:
            self.store.save(protocol_round, node, sent)  # before the message leaves
            if phase not in sent:
                exchange.send(method, endpoint, body, purpose, headers)
                sent.append(phase)
                self.store.save(protocol_round, node, sent)
            if self.on_phase is not None:
                self.on_phase(f"sent {phase}")
            if self.stop_after == phase:
                raise Stopped(f"This node left the round after {phase} (as asked).")

        send(RoundPhase.ADVERTISE_KEYS, "POST", "advertisement", node.advertisement.model_dump_json().encode(),
             PURPOSE_KEYS)

        exchange.wait_for(RoundPhase.SHARE_KEYS)
        roster = exchange.fetch(SecureRoster, "roster")
        new_peers = self.peers.check(self.node_id, self.key.public_raw, dict(roster.identity_keys))
        self._check_terms(roster)
        recognised = self._roster_policy().check_roster(self.home, self.node_id, roster)
        shares = node.share_keys(roster.roster, roster.identity_keys)
        self.peers.pin(new_peers)  # only a roster this node accepted is trusted on first use
        send(RoundPhase.SHARE_KEYS, "POST", "shares", shares.model_dump_json().encode(), PURPOSE_SHARES)

        exchange.wait_for(RoundPhase.MASKED_INPUT)
        delivery = exchange.fetch(ShareDelivery, "delivery")
        delta = self._delta(exchange, update)
        examples = min(update.examples, roster.roster.quantisation.max_examples)
        masked = node.masked_input(delivery, delta, examples).to_bytes()
        digest = sha256_hex(masked)
        send(RoundPhase.MASKED_INPUT, "PUT", "update", masked, PURPOSE_MASKED,
             **{SHA256_HEADER: digest, "Content-Type": "application/octet-stream"})

        info = exchange.wait_for(RoundPhase.CONSISTENCY_CHECK, finished_ok=True)
        if info.phase == RoundPhase.CONSISTENCY_CHECK and RoundState(info.state) in ACCEPTS_SUBMISSIONS:
            try:
                survivors = exchange.fetch(SurvivorList, "survivors")
                signature = node.confirm_survivors(survivors, self.key.signing_key)
                send(RoundPhase.CONSISTENCY_CHECK, "POST", "consistency", signature.model_dump_json().encode(),
                     PURPOSE_CONFIRM)
            except Refused as error:  # 409: the phase closed without ours, so this node is not asked to unmask
                if error.status != 409:
                    raise
            info = exchange.wait_for(RoundPhase.UNMASKING, finished_ok=True)
        confirmed = RoundPhase.CONSISTENCY_CHECK in sent  # its masked input counts either way
        if confirmed and info.phase == RoundPhase.UNMASKING and RoundState(info.state) in ACCEPTS_SUBMISSIONS:
            try:
                request = exchange.fetch(UnmaskRequest, "unmask-request")
                recognised.check_survivors(request.survivors)
                response = node.unmask(request)
                send(RoundPhase.UNMASKING, "POST", "unmask", response.model_dump_json().encode(), PURPOSE_UNMASK)
            except Refused as error:  # 409 once t answers were in before ours: the round needs nothing more
                if error.status != 409 or RoundState(exchange.current().state) not in (RoundState.AGGREGATING,
                                                                                       RoundState.COMPLETE):
                    raise
            info = exchange.current()
        return UploadReceipt(round_id=info.round_id, update_sha256=digest, examples=examples, counted=True,
                             round_state=info.state)

    def _roster_policy(self) -> RosterPolicy:
        if self.roster_policy is None:
            self.roster_policy = RosterPolicy.read(self.home)
        return self.roster_policy

    def _check_terms(self, roster: SecureRoster) -> None:
        """The round's threshold and number format must be the approved plan's (the protocol checks the rest)."""
        plan = self.plan
        if plan is None:
            return
        spec, wanted = roster.roster.quantisation, plan.secure_aggregation_threshold
        if wanted is not None and roster.roster.threshold < wanted:
            raise ParticipationRefused(f"The coordinator lowered the round's threshold to {roster.roster.threshold}; "
                                       f"the approved plan says {wanted}.", RefusalReason.SECURE_AGGREGATION)
        if spec.clip != plan.secure_aggregation_clip or spec.max_examples != plan.secure_aggregation_max_examples:
            raise ParticipationRefused("The round's number format is not the one of the approved plan.",
                                       RefusalReason.SECURE_AGGREGATION)

    def _delta(self, exchange: _Exchange, update: PreparedUpdate) -> np.ndarray:
        """local − global as one float64 vector in ``flatten_state`` order (what the coordinator adds back)."""
        info = exchange.round_info
        base = state_dict_from_bytes(exchange.client.weights(info.model_version, info.model_sha256))
        local_vector, layout = flatten_state(update.arrays())
        base_vector, base_layout = flatten_state(base)
        if layout != base_layout:
            raise ProtocolError("The trained update does not have the tensors of the round's model.")
        local_vector -= base_vector
        return local_vector


class _Exchange:
    """HTTP and phase-waiting for one round (every request goes through the node's recorded transport)."""

    def __init__(self, owner: SecureUpload, client: CoordinatorClient, round_info: RoundInfo,
                 should_stop: Callable[[], bool]) -> None:
        self.owner, self.client, self.round_info, self.should_stop = owner, client, round_info, should_stop

    def send(self, method: str, endpoint: str, body: bytes, purpose: str, headers: dict[str, str]) -> SecureReceipt:
        sent_headers = {"Content-Type": "application/json", **headers}
        response = self.client.transport.send(method, path(self.round_info.round_id, endpoint), purpose=purpose,
                                              data=body, headers=sent_headers, auth=True, read_timeout=300.0)
        return self._model(SecureReceipt, response.content)

    def fetch(self, model: type[M], endpoint: str) -> M:
        response = self.client.transport.send("GET", path(self.round_info.round_id, endpoint), purpose=PURPOSE_FETCH,
                                              auth=True)
        return self._model(model, response.content)

    @staticmethod
    def _model(model: type[M], content: bytes) -> M:
        try:
            return model.model_validate_json(content)
        except ValidationError:
            raise ProtocolError(f"The coordinator's answer is not a valid {model.__name__}.") from None

    def current(self) -> RoundInfo:
        return self.client.round(self.round_info.round_id)

    def wait_for(self, phase: RoundPhase, *, finished_ok: bool = False) -> RoundInfo:
        """Long-poll until the round reaches ``phase`` (or later); a failed round, or one finished without this
        node (unless ``finished_ok``), raises ``Refused`` (409: the engine counts the round as missed)."""
        wanted = PHASES_SECURE.index(phase)
        info = self.current()
        while True:
            if self.should_stop():
                raise Stopped("Stopped during a secure-aggregation round.")
            state = RoundState(info.state)
            if state == RoundState.FAILED:
                raise Refused(f"Round {info.number} failed: {info.reason}", 409, ErrorCode.ROUND_FAILED)
            if state in (RoundState.AGGREGATING, RoundState.COMPLETE):
                if finished_ok:
                    return info
                raise Refused(f"Round {info.number} went on without this node.", 409, ErrorCode.CONFLICT)
            if info.phase in PHASES_SECURE and PHASES_SECURE.index(RoundPhase(info.phase)) >= wanted:
                return info
            if self.owner.on_phase is not None:
                self.owner.on_phase(f"waiting for {phase}")
            wait = self.client.wait(info.plan_sha256, info.revision, self.owner.poll_timeout)
            info = wait.round if wait.round is not None and wait.round.round_id == info.round_id else self.current()


def forget_finished_round(home: Path, audience: str, plan_sha256: str, round_id: int) -> bool:
    """Drop a finished round's saved state (its secrets are of no more use); True when it shows that the coordinator
    acknowledged this node's masked input — a round that then completed counted this node's update, even if the node
    was away for the rest of it (the other nodes' shares removed its self-mask)."""
    store = SecureStateStore(home)
    protocol_round = round_key(audience, plan_sha256, round_id)
    try:
        loaded = store.load(protocol_round)
    except KeyStoreError:  # unreadable: nothing to learn from it
        loaded = None
    if loaded is not None:
        store.bury(protocol_round)
    else:
        store.drop(protocol_round)
    return loaded is not None and RoundPhase.MASKED_INPUT in loaded[1]


def secure_uploader(home: Path, connection: FederationConnection, *, plan: TrainingPlan | None = None,
                    poll_timeout: float = 20.0, stop_after: RoundPhase | None = None,
                    on_phase: Callable[[str], None] | None = None,
                    roster_policy: RosterPolicy | None = None) -> SecureUpload:
    """The strategy for an enrolled node's ``FederationConnection`` (key, node id, federation audience)."""
    membership = connection.membership
    return SecureUpload(home, connection.key, membership.node_id, membership.federation, plan=plan,
                        poll_timeout=poll_timeout, stop_after=stop_after, on_phase=on_phase,
                        roster_policy=roster_policy)
