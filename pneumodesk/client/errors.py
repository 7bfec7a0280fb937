"""Typed errors of the node's federation client; ``str(error)`` is a plain sentence an admin can act on.

Invariant: no message carries a token, a key, a password or anything read from a local image.
"""

from __future__ import annotations

from pneumodesk.errors import PneumoDeskError
from pneumodesk.federation.vocabulary import ErrorCode, RefusalReason


class ClientError(PneumoDeskError):
    """Base of every error raised by ``pneumodesk.client``."""


class CoordinatorUnreachable(ClientError):
    """No connection could be made (refused, timed out, DNS, proxy) even after the transport's retries."""


class TlsFailure(ClientError):
    """The coordinator's certificate is not signed by the pinned federation CA, or the TLS handshake failed."""


class Refused(ClientError):
    """The coordinator answered with an error; ``status`` is its HTTP status, ``code`` its JSON error code (None
    when it sent none this client knows). Callers decide on these two, never on the message's words."""

    def __init__(self, message: str, status: int, code: ErrorCode | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class NotAuthorised(Refused):
    """The coordinator did not accept our identity (token refused twice, node pending or revoked).

    ``reason`` is set where the error is raised: REVOKED when the coordinator said (by its error code, or by no
    longer knowing the node at all) that the operator revoked this node; NOT_AUTHORISED otherwise.
    """

    def __init__(self, message: str, status: int, code: ErrorCode | None = None, *,
                 reason: RefusalReason = RefusalReason.NOT_AUTHORISED) -> None:
        super().__init__(message, status, code)
        self.reason = reason


class ProtocolError(ClientError):
    """The coordinator's answer is not what the protocol says (malformed JSON, sha256 mismatch, wrong size)."""


class KeyStoreError(ClientError):
    """The node's private key cannot be created, read or decrypted."""


class EnrolmentError(ClientError):
    """Enrolment cannot proceed (no CA file, not enrolled, approval refused or timed out)."""


class ParticipationRefused(ClientError):
    """The node will not train for this plan now: no active approval, outside policy, or no budget left."""

    def __init__(self, message: str, reason: RefusalReason) -> None:
        super().__init__(message)
        self.reason = reason


class Stopped(ClientError):
    """The engine was asked to stop (GUI cancel, service shutdown)."""
