"""Typed errors of the coordinator's service layer; the API maps each to an HTTP status and a JSON body."""

from __future__ import annotations

from pneumodesk.errors import PneumoDeskError
from pneumodesk.federation.vocabulary import ErrorCode


class CoordinatorError(PneumoDeskError):
    """An error a node or operator can act on; ``str(error)`` is the message they see."""

    status: int = 400
    code: ErrorCode = ErrorCode.BAD_REQUEST


class NotFound(CoordinatorError):
    status = 404
    code = ErrorCode.NOT_FOUND


class Conflict(CoordinatorError):
    status = 409
    code = ErrorCode.CONFLICT


class Unauthorised(CoordinatorError):
    """Missing, malformed, expired or otherwise unacceptable credentials (deliberately vague to the caller)."""

    status = 401
    code = ErrorCode.UNAUTHORISED


class Forbidden(CoordinatorError):
    status = 403
    code = ErrorCode.FORBIDDEN


class NodeRevoked(Forbidden):
    """Said only to the node itself, after it proved its key or showed a valid token: it may act on the code."""

    code = ErrorCode.NODE_REVOKED


class NodePending(Forbidden):
    """Said only to the node itself (as ``NodeRevoked``): the operator has not approved it yet."""

    code = ErrorCode.NODE_PENDING


class InvalidInput(CoordinatorError):
    status = 422
    code = ErrorCode.INVALID_INPUT


class TooLarge(CoordinatorError):
    """A body larger than what this round can need (refused before it is read)."""

    status = 413
    code = ErrorCode.BODY_TOO_LARGE


class ConfigurationError(CoordinatorError):
    """The coordinator's folder or configuration is missing or unusable (operator-facing)."""

    code = ErrorCode.CONFIGURATION
