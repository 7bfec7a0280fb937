"""Joining a federation: pin its CA, create the node key, enrol with a one-time code, learn the approval state,
and open an authenticated connection for everything afterwards.

Invariants: the CA file the admin was given is validated (an X.509 CA certificate) and copied to
``home/federation/ca.pem``; its sha256 goes into the membership and is re-checked on every ``connect`` (a swapped
CA file stops the node instead of silently trusting someone else). Only the node name and the public key leave
at enrolment. The audience (federation identity) is learned once and checked before every signature.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography import x509

from pneumodesk.federation.vocabulary import MembershipStatus, RefusalReason

from .answers import check_identifier, check_plain_text
from .api import PURPOSE_ENROL, CoordinatorClient
from .errors import ClientError, EnrolmentError, NotAuthorised
from .keys import NodeKey, NodeKeyStore
from .tokens import NodeTokens
from .transport import DEFAULT_TIMEOUTS, EgressEvent, Timeouts, TokenSource, Transport, normalise_url

if TYPE_CHECKING:
    from pneumodesk.node import Membership, NodeService, UserSession

CA_FILE = "ca.pem"


def pin_ca(home: Path, ca_file: Path) -> tuple[Path, str]:
    """Validate ``ca_file`` as a CA certificate (PEM) and copy it to ``home/federation/ca.pem``; (path, sha256)."""
    try:
        data = Path(ca_file).read_bytes()
    except OSError as error:
        raise EnrolmentError(f"Cannot read the CA certificate file {ca_file}: {error.strerror or error}.") from None
    try:
        certificate = x509.load_pem_x509_certificate(data)
        constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints).value
    except (ValueError, x509.ExtensionNotFound):
        raise EnrolmentError(f"{ca_file} is not a CA certificate in PEM form; ask the federation operator for the "
                             "federation's ca.pem.") from None
    if not constraints.ca:
        raise EnrolmentError(f"{ca_file} is a server certificate, not the federation's CA certificate.")
    now = dt.datetime.now(dt.UTC)
    if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
        raise EnrolmentError(f"The CA certificate {ca_file} is not valid now (expired or not yet valid).")
    target = Path(home) / "federation" / CA_FILE
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    return target, hashlib.sha256(data).hexdigest()


@dataclass
class FederationConnection:
    """An enrolled node's authenticated line to its coordinator (transport, typed client, tokens, key)."""

    membership: Membership
    transport: Transport
    client: CoordinatorClient
    tokens: TokenSource  # NodeTokens; anything that hands out this node's bearer tokens
    key: NodeKey

    def close(self) -> None:
        self.transport.close()


def enrol(service: NodeService, actor: UserSession, home: Path, url: str, code: str, ca_file: Path, name: str, *,
          key_store: NodeKeyStore, recorder: Callable[[EgressEvent], None] | None = None,
          proxies: Mapping[str, str] | None = None) -> Membership:
    """Enrol this node; returns the saved membership (status ``pending`` until the operator approves).

    Needs ``manage_federation``; refuses when the node is already a member (leave first). A new node key replaces
    any earlier one in ``key_store`` (a key without an active membership is orphaned).
    """
    from pneumodesk.node import Permission
    from pneumodesk.node.membership import Membership

    service.accounts.require(actor, Permission.MANAGE_FEDERATION)
    existing = service.membership.get()
    if existing is not None and existing.status != MembershipStatus.REVOKED:
        raise EnrolmentError(f"This node is already enrolled with {existing.coordinator_url} as "
                             f"{existing.node_name!r}; leave that federation first.")
    try:
        base = normalise_url(url)
    except ValueError as error:
        raise EnrolmentError(str(error)) from None
    name = name.strip()
    if not name:
        raise EnrolmentError("Give the node a name the federation operator will recognise (e.g. the hospital).")
    ca_path, ca_sha = pin_ca(home, ca_file)
    key = NodeKey.generate()
    key_store.save(key)
    transport = Transport(base, ca_path, egress=service.egress, recorder=recorder, proxies=proxies)
    try:
        client = CoordinatorClient(transport)
        info = client.enrol(code.strip(), name, key.public_key_b64)
        check_identifier(info.node_id, "node id")
        # A challenge is answered for pending nodes too: it tells us the federation's audience to pin.
        challenge = transport.json(transport.send("POST", f"/nodes/{info.node_id}/challenge", purpose=PURPOSE_ENROL))
        audience = challenge.get("audience") if isinstance(challenge, dict) else None
        if not isinstance(audience, str) or not audience:
            raise EnrolmentError("The coordinator did not say which federation it belongs to.")
        check_plain_text(audience, "federation identity")
    except ClientError:
        key_store.delete()  # nothing was enrolled with this key; the next attempt makes a new one
        raise
    finally:
        transport.close()
    membership = Membership(
        coordinator_url=base, federation=audience, node_id=info.node_id, node_name=name, ca_pem_sha256=ca_sha,
        ca_path=ca_path, status=MembershipStatus(info.status), enrolled_at=dt.datetime.now(dt.UTC),
    )
    service.membership.save(actor, membership)
    saved = service.membership.get()
    assert saved is not None
    return saved


def connect(service: NodeService, key_store: NodeKeyStore, *,
            recorder: Callable[[EgressEvent], None] | None = None, proxies: Mapping[str, str] | None = None,
            timeouts: Timeouts = DEFAULT_TIMEOUTS, retries: int = 3, backoff: float = 0.5) -> FederationConnection:
    """An authenticated connection for an enrolled node whose key is in ``key_store`` (no request is sent yet)."""
    membership = service.membership.get()
    if membership is None:
        raise EnrolmentError("This node is not enrolled with a federation; enrol it first.")
    if membership.status == MembershipStatus.REVOKED:
        raise EnrolmentError("The federation operator revoked this node; it must enrol again with a new code.")
    ca_path = Path(membership.ca_path)
    try:
        actual = hashlib.sha256(ca_path.read_bytes()).hexdigest()
    except OSError:
        raise EnrolmentError(f"The pinned federation CA certificate {ca_path} is missing; enrol again.") from None
    if actual != membership.ca_pem_sha256:
        raise EnrolmentError("The pinned federation CA certificate was changed since enrolment; nothing will be "
                             "sent until the node is enrolled again.")
    key = key_store.load()
    transport = Transport(membership.coordinator_url, ca_path, egress=service.egress, recorder=recorder,
                          proxies=proxies, timeouts=timeouts, retries=retries, backoff=backoff)
    tokens = NodeTokens(transport, key, membership.node_id, membership.federation)
    transport.tokens = tokens
    return FederationConnection(membership, transport, CoordinatorClient(transport), tokens, key)


def membership_status_of(error: NotAuthorised) -> MembershipStatus | None:
    """What a refused token request says about this node, decided on the error's typed reason and status, never on
    its words: revoked (``reason`` REVOKED), pending (any other 403: the coordinator knows the node but has not
    approved it), or None (the refusal says nothing about the membership)."""
    if error.reason == RefusalReason.REVOKED:
        return MembershipStatus.REVOKED
    if error.status == 403:
        return MembershipStatus.PENDING
    return None


def refresh_status(service: NodeService, connection: FederationConnection) -> MembershipStatus:
    """Ask the coordinator whether this node is approved (by trying to get a token); stores and returns the status.
    Raises ``CoordinatorUnreachable``/``TlsFailure`` when it cannot ask, ``NotAuthorised`` when the refusal says
    nothing about the membership (e.g. another federation's audience).
    """
    try:
        connection.tokens.invalidate()
        connection.tokens.token()
        status = MembershipStatus.APPROVED
    except NotAuthorised as error:
        refused = membership_status_of(error)
        if refused is None:
            raise
        status = refused
    if status != connection.membership.status:
        service.membership.set_status(status)
        current = service.membership.get()
        assert current is not None
        connection.membership = current
    return status


def wait_for_approval(service: NodeService, connection: FederationConnection, *, timeout: float,
                      should_stop: Callable[[], bool] = lambda: False, interval: float = 2.0,
                      on_status: Callable[[MembershipStatus], None] | None = None) -> MembershipStatus:
    """Ask every ``interval`` seconds (the coordinator has no push for this) until approved, revoked, stopped or
    ``timeout``; returns the last status."""
    deadline = time.monotonic() + timeout
    while True:
        status = refresh_status(service, connection)
        if on_status is not None:
            on_status(status)
        if status != MembershipStatus.PENDING or should_stop() or time.monotonic() >= deadline:
            return status
        time.sleep(min(interval, max(0.0, deadline - time.monotonic())))
