"""Hostile coordinator answers, and the node's real code paths that read them (shared by the bounded fuzz tests in
``tests/unit/test_client_hostile_messages.py``, the crash-corpus replay and ``benchmarks/fuzz_node_messages.py``).

Every message kind has a ``Kind``: a valid template answer, and a ``drive`` function that feeds one hostile body to
the node's own parsing path, in a fresh node home, and returns what the node did. The property each drive checks:
the node either accepts the answer or refuses it with a ``PneumoDeskError`` (plain sentence); nothing else escapes,
and a refusal leaves the node store (every table but the egress log), the privacy ledger and the pinned keys as they
were.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import pickle
import sqlite3
import struct
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import strategies as st

from pneumodesk.client.answers import published_plan
from pneumodesk.client.enrolment import connect, enrol, refresh_status
from pneumodesk.client.errors import KeyStoreError
from pneumodesk.client.keys import NodeKey
from pneumodesk.client.secure_upload import SecureUpload
from pneumodesk.client.upload import PreparedUpdate
from pneumodesk.errors import PneumoDeskError
from pneumodesk.federation.messages import SHA256_HEADER
from pneumodesk.federation.secagg import QuantisationSpec, SecAggNode, ShareDelivery, UnmaskRequest
from pneumodesk.federation.secagg.messages import KeyRoster, ShareKeysMessage
from pneumodesk.federation.secagg.wire import round_key
from pneumodesk.federation.tensors import sha256_hex, state_dict_from_bytes, state_dict_to_bytes
from pneumodesk.federation.vocabulary import MembershipStatus
from pneumodesk.node import NodeService
from pneumodesk.node.store import STORE_FILE
from tests.lying_coordinator import AUDIENCE, NODE_ID, Answer, EnrolledNode, enrolled_node, lying_client

PLAN_SHA = "a" * 64
MODEL_SHA = "b" * 64
JSON_HEADERS = {"Content-Type": "application/json"}


# -- what a hostile coordinator may send ----------------------------------------------------------------------------

EXTREME_VALUES: list[Any] = [
    None, True, False, 0, -1, 1, 2**31, 2**53 + 1, 2**63, -(2**63), 10**400, -(10**400), 1.5, -0.0, float("nan"),
    float("inf"), float("-inf"), 1e308, "", " ", "\x00", "\ud800", "é" * 3, "a" * 5000, "../../../etc/passwd",
    "x\nInjected: header", "NaN", "0" * 64, "A" * 64, [], {}, [None], {"": None},
]

hostile_scalars = st.one_of(
    st.sampled_from(EXTREME_VALUES), st.none(), st.booleans(), st.integers(),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=40),
)
json_values = st.recursive(
    hostile_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)

SPECIAL_BODIES: list[bytes] = [
    b"", b"null", b"[]", b"{}", b"0", b'"text"', b"\xff\xfe\x00", b"{" * 5000, b"[" * 100_000 + b"]" * 100_000,
    b'{"a":' * 3000 + b"1" + b"}" * 3000, pickle.dumps({"round_id": 1}), b"NaN", b"Infinity", b"1e999",
    b"9" * 5000, b"\xef\xbb\xbf{}", b'{"__class__": "os.system"}',
]


def encode(value: Any) -> bytes:
    """JSON as a lying coordinator may write it: NaN/Infinity allowed, lone surrogates escaped."""
    return json.dumps(value, allow_nan=True).encode()


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths(item, (*prefix, index))


def _replace(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        return {**value, head: _replace(value[head], rest, new)}
    copy = list(value)
    copy[head] = _replace(copy[head], rest, new)
    return copy


def _delete(value: Any, path: tuple[Any, ...]) -> Any:
    if len(path) == 1:
        if isinstance(value, dict):
            return {k: v for k, v in value.items() if k != path[0]}
        return [v for i, v in enumerate(value) if i != path[0]]
    head = path[0]
    if isinstance(value, dict):
        return {**value, head: _delete(value[head], path[1:])}
    copy = list(value)
    copy[head] = _delete(copy[head], path[1:])
    return copy


@st.composite
def mutations(draw: st.DrawFn, template: Any, rounds: int = 3) -> Any:
    """``template`` with up to ``rounds`` hostile edits: a value replaced (by an extreme one, any JSON, or another
    field's value), a field dropped, an unknown field added, a list duplicated or reversed."""
    value = template
    for _ in range(draw(st.integers(1, rounds))):
        paths = list(_paths(value))
        path = draw(st.sampled_from(paths))
        operation = draw(st.sampled_from(["replace", "replace", "json", "drop", "unknown", "duplicate", "reverse",
                                          "copy"]))
        target = _get(value, path)
        if operation == "replace":
            value = _replace(value, path, draw(st.sampled_from(EXTREME_VALUES)))
        elif operation == "json":
            value = _replace(value, path, draw(json_values))
        elif operation == "drop" and path:
            value = _delete(value, path)
        elif operation == "unknown" and isinstance(target, dict):
            value = _replace(value, path, {**target, draw(st.text(min_size=1, max_size=8)): draw(json_values)})
        elif operation == "duplicate" and isinstance(target, list) and target:
            value = _replace(value, path, target + target[:1])
        elif operation == "reverse" and isinstance(target, list):
            value = _replace(value, path, target[::-1])
        elif operation == "copy":
            value = _replace(value, path, _get(value, draw(st.sampled_from(paths))))
    return value


def _get(value: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        value = value[part]
    return value


def bodies(template: Any) -> st.SearchStrategy[bytes]:
    """Answer bodies for one message kind: mostly mutated valid answers, then any JSON, raw bytes, special cases."""
    return st.one_of(
        mutations(template).map(encode), mutations(template).map(encode), st.just(encode(template)),
        json_values.map(encode), st.binary(max_size=300), st.sampled_from(SPECIAL_BODIES),
    )


# -- the node's store, before and after -----------------------------------------------------------------------------

def store_snapshot(home: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table but the egress log (a refused answer was still received: it is logged)."""
    connection = sqlite3.connect(home / STORE_FILE)
    try:
        tables = [row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        rows = {table: sorted(map(tuple, connection.execute(f'SELECT * FROM "{table}"')), key=repr)
                for table in tables if table != "egress_log"}
        if "sqlite_sequence" in rows:  # the egress log's own counter moves with it
            rows["sqlite_sequence"] = [row for row in rows["sqlite_sequence"] if row[0] != "egress_log"]
        return rows
    finally:
        connection.close()


class Crash(AssertionError):
    """The node answered a hostile message with something other than a typed refusal."""


@dataclass(frozen=True)
class Outcome:
    accepted: bool
    message: str = ""


def refusal_or_result(call: Callable[[], object]) -> Outcome:
    """Run ``call``; a ``PneumoDeskError`` with a plain sentence is a refusal, anything else not caught is a crash."""
    try:
        call()
    except PneumoDeskError as error:
        text = str(error)
        if not text.strip():
            raise Crash(f"{type(error).__name__} without a message") from error
        return Outcome(False, text)
    except Exception as error:
        raise Crash(f"{type(error).__name__}: {error}"[:300]) from error
    return Outcome(True)


@contextmanager
def node_home() -> Iterator[EnrolledNode]:
    with tempfile.TemporaryDirectory(prefix="pneumodesk-fuzz-") as folder, enrolled_node(Path(folder) / "home") as node:
        yield node


class StaticTokens:
    def token(self) -> str:
        return "static-test-token"

    def invalidate(self) -> None:
        pass


def _json_answer(body: bytes, status: int = 200) -> Callable[[Any], Answer]:
    return lambda _request: Answer(body, status, JSON_HEADERS)


def _checked(home: Path, call: Callable[[], object]) -> Outcome:
    before = store_snapshot(home)
    outcome = refusal_or_result(call)
    if not outcome.accepted and store_snapshot(home) != before:
        raise Crash("a refused answer changed the node store")
    return outcome


# -- templates (valid answers) -----------------------------------------------------------------------------------

def round_template(**changes: Any) -> dict[str, Any]:
    return {"round_id": 7, "plan_sha256": PLAN_SHA, "number": 1, "state": "open", "phase": "plain_input",
            "model_version": 1, "model_sha256": MODEL_SHA, "deadline": "2030-01-01T00:00:00+00:00",
            "updates_received": 0, "min_nodes": 2, "result_version": None, "revision": "7:0", "reason": None,
            **changes}


def plan_document() -> dict[str, Any]:
    return {"name": "fuzz plan", "architecture": "pneumonet-tiny", "input_size": 32, "base_model_sha256": MODEL_SHA,
            "learning_rate": 0.05, "rounds": 2, "min_nodes": 2, "dp": {"enabled": True, "noise_multiplier": 1.0}}


def plan_list_template() -> list[dict[str, Any]]:
    from pneumodesk.federation.plan import TrainingPlan

    plan = TrainingPlan.model_validate(plan_document())
    return [{"plan_sha256": plan.sha256, "name": plan.name, "published": "2030-01-01T00:00:00+00:00",
             "status": "active", "plan": json.loads(plan.canonical_json())}]


# -- drives: one hostile body through the node's real path ---------------------------------------------------------

def drive_plan_list(body: bytes) -> Outcome:
    """The plan list and each plan's text, as the Federation page and ``pneumodesk node run`` read them."""
    with node_home() as node:
        client = lying_client(node.ca_path, _json_answer(body), tokens=StaticTokens())

        def read() -> None:
            for summary in client.plans():
                node.service.approvals.active(summary.plan_sha256)
                published_plan(summary)
        return _checked(node.home, read)


def drive_plan_wait(body: bytes) -> Outcome:
    with node_home() as node:
        client = lying_client(node.ca_path, _json_answer(body), tokens=StaticTokens())
        return _checked(node.home, lambda: client.wait(PLAN_SHA, "7:0", 1.0))


def drive_round_info(body: bytes) -> Outcome:
    """A join answer and a round status answer (both RoundInfo)."""
    with node_home() as node:
        client = lying_client(node.ca_path, _json_answer(body), tokens=StaticTokens())
        joined = _checked(node.home, lambda: client.join(PLAN_SHA))
        polled = _checked(node.home, lambda: client.round(7))
        return Outcome(joined.accepted and polled.accepted, joined.message or polled.message)


def drive_model_list(body: bytes) -> Outcome:
    with node_home() as node:
        client = lying_client(node.ca_path, _json_answer(body), tokens=StaticTokens())
        return _checked(node.home, client.models)


def drive_tokens(body: bytes) -> Outcome:
    """A challenge or token answer (the same body for both steps) as the membership check reads it."""
    with node_home() as node:
        def script(request: Any) -> Answer:
            return Answer(body, 200, JSON_HEADERS)
        connection = connect(node.service, _MemoryKeys(NodeKey.generate()))
        connection.transport.session.mount("https://", _adapter(script))

        def check() -> None:
            status = refresh_status(node.service, connection)
            assert status == MembershipStatus.APPROVED
        try:
            return _checked(node.home, check)
        finally:
            connection.close()


def drive_token_pair(challenge: bytes, token: bytes) -> Outcome:
    with node_home() as node:
        def script(request: Any) -> Answer:
            return Answer(challenge if request.path_url.endswith("/challenge") else token, 200, JSON_HEADERS)
        connection = connect(node.service, _MemoryKeys(NodeKey.generate()))
        connection.transport.session.mount("https://", _adapter(script))
        try:
            return _checked(node.home, lambda: refresh_status(node.service, connection))
        finally:
            connection.close()


def _adapter(script: Callable[[Any], Answer]) -> Any:
    from tests.lying_coordinator import ScriptedAdapter

    return ScriptedAdapter(script)


class _MemoryKeys:
    """A NodeKeyStore in memory (the key store itself is not what is fuzzed here)."""

    def __init__(self, key: NodeKey | None = None) -> None:
        self.key = key

    def has_key(self) -> bool:
        return self.key is not None

    def load(self) -> NodeKey:
        if self.key is None:
            raise KeyStoreError("No node key.")
        return self.key

    def save(self, key: NodeKey) -> None:
        self.key = key

    def delete(self) -> None:
        self.key = None


_CA_PEM: list[bytes] = []


def ca_pem() -> bytes:
    """A real CA certificate for enrolment (made once per process)."""
    if not _CA_PEM:
        from cryptography.hazmat.primitives.asymmetric import ec

        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "fuzz CA")])
        now = dt.datetime.now(dt.UTC)
        certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                       .serial_number(1).not_valid_before(now - dt.timedelta(days=1))
                       .not_valid_after(now + dt.timedelta(days=30))
                       .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                       .sign(key, hashes.SHA256()))
        _CA_PEM.append(certificate.public_bytes(serialization.Encoding.PEM))
    return _CA_PEM[0]


NODE_INFO = {"node_id": "n-0123456789abcdef", "name": "Fuzz node", "status": "pending",
             "created": "2030-01-01T00:00:00+00:00", "public_key_sha256": "c" * 64}
CHALLENGE = {"nonce": "n" * 32, "expires": "2030-01-01T00:05:00+00:00", "audience": AUDIENCE}
TOKEN = {"access_token": "header.payload.signature", "token_type": "bearer", "expires_in": 900}


def drive_enrolment(node_info: bytes, challenge: bytes) -> Outcome:
    """Enrolment's two answers; a refusal leaves no membership and no node key behind."""
    with tempfile.TemporaryDirectory(prefix="pneumodesk-fuzz-") as folder:
        home = Path(folder) / "home"
        service = NodeService.open(home)
        try:
            service.accounts.create_owner("owner", "Owner", "fuzzing passphrase 1234")
            owner = service.accounts.authenticate("owner", "fuzzing passphrase 1234")
            ca = Path(folder) / "ca.pem"
            ca.write_bytes(ca_pem())
            keys = _MemoryKeys()
            from tests.lying_coordinator import BASE_URL, ScriptedAdapter

            def script(request: Any) -> Answer:
                return Answer(challenge if request.path_url.endswith("/challenge") else node_info, 200, JSON_HEADERS)

            import pneumodesk.client.enrolment as enrolment_module

            original = enrolment_module.Transport

            def transport(*args: Any, **kwargs: Any) -> Any:
                made = original(*args, **kwargs)
                made.session.mount("https://", ScriptedAdapter(script))
                return made

            enrolment_module.Transport = transport  # type: ignore[misc]
            try:
                outcome = _checked(home, lambda: enrol(service, owner, home, BASE_URL, "code-123456", ca,
                                                       "Fuzz node", key_store=keys))
            finally:
                enrolment_module.Transport = original  # type: ignore[misc]
            if not outcome.accepted and (service.membership.get() is not None or keys.has_key()):
                raise Crash("a refused enrolment left a membership or a node key behind")
            return outcome
        finally:
            service.close()


# -- model blobs ---------------------------------------------------------------------------------------------------

BASE_WEIGHTS = state_dict_to_bytes({"w": np.zeros(4, dtype=np.float32)})


def _with_header(header: Any) -> bytes:
    text = json.dumps(header, allow_nan=True).encode()
    return struct.pack("<Q", len(text)) + text + b"\x00" * 16


@st.composite
def weight_blobs(draw: st.DrawFn) -> bytes:
    """Safetensors bytes a lying coordinator may send: cut, flipped, with a hostile header, pickled, or random."""
    choice = draw(st.sampled_from(["truncate", "flip", "header", "binary", "pickle", "valid"]))
    if choice == "truncate":
        return BASE_WEIGHTS[: draw(st.integers(0, len(BASE_WEIGHTS) - 1))]
    if choice == "flip":
        data = bytearray(BASE_WEIGHTS)
        for _ in range(draw(st.integers(1, 4))):
            data[draw(st.integers(0, len(data) - 1))] ^= draw(st.integers(1, 255))
        return bytes(data)
    if choice == "header":
        header = {"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}
        return _with_header(draw(mutations(header)))
    if choice == "binary":
        return draw(st.binary(max_size=200))
    if choice == "pickle":
        return pickle.dumps({"w": np.zeros(4, dtype=np.float32)})
    return BASE_WEIGHTS


def drive_weights(blob: bytes, claimed: str | None, expected: str | None) -> Outcome:
    """A model download (sha256 header and the announced sha256) and its parsing, as the engine does both."""
    with node_home() as node:
        headers = {"Content-Type": "application/octet-stream"} | ({SHA256_HEADER: claimed} if claimed else {})
        client = lying_client(node.ca_path, lambda _request: Answer(blob, 200, headers), tokens=StaticTokens())
        return _checked(node.home, lambda: state_dict_from_bytes(client.weights(1, expected)))


# -- the plain upload's receipt ---------------------------------------------------------------------------------------

def receipt_template() -> dict[str, Any]:
    """The receipt an honest coordinator sends for ``BASE_WEIGHTS`` with 10 examples in round 7."""
    return {"round_id": 7, "update_sha256": sha256_hex(BASE_WEIGHTS), "examples": 10, "counted": True,
            "round_state": "collecting"}


def drive_upload_receipt(body: bytes) -> Outcome:
    """The answer to a plain update upload: accepted only when it acknowledges exactly the update sent."""
    with node_home() as node:
        client = lying_client(node.ca_path, _json_answer(body), tokens=StaticTokens())
        outcome = _checked(node.home, lambda: client.upload(7, BASE_WEIGHTS, 10))
        if outcome.accepted and not _same_receipt(body):
            raise Crash("a receipt for another round, update or example count was accepted")
        return outcome


def _same_receipt(body: bytes) -> bool:
    document = json.loads(body)
    template = receipt_template()
    return all(document.get(key) == template[key] for key in ("round_id", "update_sha256", "examples"))


# -- secure aggregation: roster, share delivery, unmasking request -----------------------------------------------

SECURE_ROUND = 7
PEERS = ("node-a", "node-b")
PROTOCOL_ROUND = round_key(AUDIENCE, PLAN_SHA, SECURE_ROUND)
SPEC = QuantisationSpec.for_round(max_nodes=3, clip=1.0, max_examples=1000)


def _fixed_node(node_id: str, seed: int) -> tuple[SecAggNode, Ed25519PrivateKey]:
    """A node whose keys are fixed (so saved hostile bodies replay against the same keys)."""
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    from pneumodesk.federation.secagg import NodeState
    from pneumodesk.federation.secagg.keys import sign_advertisement

    identity = Ed25519PrivateKey.from_private_bytes(bytes([seed]) * 32)
    mask = X25519PrivateKey.from_private_bytes(bytes([seed + 1]) * 32)
    share = X25519PrivateKey.from_private_bytes(bytes([seed + 2]) * 32)
    advertisement = sign_advertisement(identity, PROTOCOL_ROUND, node_id, mask.public_key().public_bytes_raw(),
                                       share.public_key().public_bytes_raw())
    state = NodeState(round_id=PROTOCOL_ROUND, node_id=node_id, mask_private=mask.private_bytes_raw(),
                      share_private=share.private_bytes_raw(), self_seed=bytes([seed + 3]) * 32,
                      advertisement=advertisement)
    return SecAggNode(state), identity


@dataclass(frozen=True)
class SecureRound:
    """Valid answers of one secure round for the node ``NODE_ID`` with two honest peers (fixed keys)."""

    roster: dict[str, Any]
    delivery: dict[str, Any]
    survivors: dict[str, Any]
    unmask_request: dict[str, Any]
    own_identity: bytes


_SECURE: list[SecureRound] = []


def secure_round() -> SecureRound:
    if _SECURE:
        return _SECURE[0]
    nodes = {node: _fixed_node(node, seed) for node, seed in ((NODE_ID, 10), (PEERS[0], 20), (PEERS[1], 30))}
    identities = {node: identity.public_key().public_bytes_raw() for node, (_, identity) in nodes.items()}
    ids = sorted(nodes)
    roster = KeyRoster(round_id=PROTOCOL_ROUND, threshold=2, vector_length=4, quantisation=SPEC,
                       advertisements=tuple(nodes[node][0].advertisement for node in ids))
    messages: list[ShareKeysMessage] = [nodes[peer][0].share_keys(roster, identities) for peer in PEERS]
    shares = tuple(share for message in messages for share in message.shares if share.receiver == NODE_ID)
    delivery = ShareDelivery(round_id=PROTOCOL_ROUND, receiver=NODE_ID, senders=tuple(ids), shares=shares)
    from pneumodesk.federation.secagg import SurvivorList
    from pneumodesk.federation.secagg.keys import sign_survivors

    survivors = SurvivorList(round_id=PROTOCOL_ROUND, survivors=tuple(ids))
    signatures = tuple(sign_survivors(nodes[node][1], PROTOCOL_ROUND, node, tuple(ids)) for node in ids)
    request = UnmaskRequest(round_id=PROTOCOL_ROUND, survivors=tuple(ids), dropped=(), signatures=signatures)
    roster_json = {"roster": json.loads(roster.model_dump_json()),
                   "identity_keys": {node: base64.b64encode(key).decode() for node, key in identities.items()}}
    _SECURE.append(SecureRound(roster_json, json.loads(delivery.model_dump_json()),
                               json.loads(survivors.model_dump_json()), json.loads(request.model_dump_json()),
                               identities[NODE_ID]))
    return _SECURE[0]


SECURE_ENDPOINTS = ("roster", "delivery", "survivors", "unmask-request", "receipt")


def secure_template(endpoint: str) -> Any:
    round_ = secure_round()
    if endpoint == "receipt":
        return {"round_id": SECURE_ROUND, "phase": "advertise_keys", "counted": True, "round_state": "collecting",
                "round_phase": "share_keys"}
    return {"roster": round_.roster, "delivery": round_.delivery, "survivors": round_.survivors,
            "unmask-request": round_.unmask_request}[endpoint]


class _SecureCoordinator:
    """Plays the round's phases honestly, except that ``endpoint`` answers ``hostile``."""

    PHASES = ("advertise_keys", "share_keys", "masked_input", "consistency_check", "unmasking")

    def __init__(self, endpoint: str, hostile: bytes) -> None:
        self.endpoint, self.hostile = endpoint, hostile
        self.step = 0
        self.sent: list[str] = []

    def _round(self) -> dict[str, Any]:
        done = self.step >= len(self.PHASES)
        phase = self.PHASES[min(self.step, len(self.PHASES) - 1)]
        return round_template(round_id=SECURE_ROUND, state="aggregating" if done else "collecting", phase=phase,
                              model_sha256=sha256_hex(BASE_WEIGHTS), revision=f"{SECURE_ROUND}:{self.step}")

    def __call__(self, request: Any) -> Answer:
        url = request.path_url.split("?")[0]
        name = url.rsplit("/", 1)[-1]
        if request.method in ("POST", "PUT"):
            self.sent.append(name)
            receipt = {**secure_template("receipt"), "phase": self.PHASES[min(self.step, len(self.PHASES) - 1)]}
            self.step += 1
            receipt["round_phase"] = self._round()["phase"]
            body = self.hostile if self.endpoint == "receipt" and name == "shares" else encode(receipt)
            return Answer(body, 200, JSON_HEADERS)
        if url.endswith("/weights"):
            return Answer(BASE_WEIGHTS, 200, {SHA256_HEADER: sha256_hex(BASE_WEIGHTS)})
        if url.endswith("/wait"):
            return Answer(encode({"changed": True, "plan_status": "active", "round": self._round()}), 200,
                          JSON_HEADERS)
        if name in ("roster", "delivery", "survivors", "unmask-request"):
            body = self.hostile if name == self.endpoint else encode(secure_template(name))
            return Answer(body, 200, JSON_HEADERS)
        return Answer(encode(self._round()), 200, JSON_HEADERS)


def drive_secure(endpoint: str, hostile: bytes) -> Outcome:
    """One whole secure round from the node's side (``SecureUpload.deliver``, resumed from its saved state) with one
    hostile answer; a refused roster pins no peer identity key."""
    from pneumodesk.client.secure_upload import SecureStateStore
    from pneumodesk.federation.messages import RoundInfo

    secure_round()
    with node_home() as node:
        own, identity = _fixed_node(NODE_ID, 10)
        key = NodeKey(identity)
        SecureStateStore(node.home).save(PROTOCOL_ROUND, own, [])
        coordinator = _SecureCoordinator(endpoint, hostile)
        client = lying_client(node.ca_path, coordinator, tokens=StaticTokens())
        upload = SecureUpload(node.home, key, NODE_ID, AUDIENCE, poll_timeout=0.01)
        local = {"w": np.full(4, 0.01, dtype=np.float32)}
        data = state_dict_to_bytes(local)
        update = PreparedUpdate(data, sha256_hex(data), 10, arrays=lambda: local)
        info = RoundInfo.model_validate(coordinator._round())
        outcome = _checked(node.home, lambda: upload.deliver(client, info, update, lambda: False))
        pinned = node.home / "federation" / "peer-identity-keys.json"
        if not outcome.accepted and "shares" not in coordinator.sent and pinned.exists():
            raise Crash("a refused roster pinned peer identity keys")
        return outcome


# -- the kinds, by name (the corpus files are named after them) ----------------------------------------------------

KINDS = ("plan_list", "plan_wait", "round_info", "model_list", "token_answer", "challenge_token", "enrolment",
         "weights", "upload_receipt", *(f"secure_{endpoint}" for endpoint in SECURE_ENDPOINTS))


def replay(kind: str, document: dict[str, Any]) -> Outcome:
    """Replay one corpus entry: ``{"kind": ..., "body": base64, ...}`` (see tests/corpus/coordinator_messages)."""
    def raw(name: str) -> bytes:
        return base64.b64decode(document[name])
    if kind == "plan_list":
        return drive_plan_list(raw("body"))
    if kind == "plan_wait":
        return drive_plan_wait(raw("body"))
    if kind == "round_info":
        return drive_round_info(raw("body"))
    if kind == "model_list":
        return drive_model_list(raw("body"))
    if kind == "token_answer":
        return drive_tokens(raw("body"))
    if kind == "challenge_token":
        return drive_token_pair(raw("challenge"), raw("token"))
    if kind == "enrolment":
        return drive_enrolment(raw("node_info"), raw("challenge"))
    if kind == "weights":
        return drive_weights(raw("body"), document.get("claimed"), document.get("expected"))
    if kind == "upload_receipt":
        return drive_upload_receipt(raw("body"))
    if kind.startswith("secure_"):
        return drive_secure(kind.removeprefix("secure_"), raw("body"))
    raise ValueError(f"unknown corpus kind {kind!r}")
