"""Typed errors of the coordinator's service layer; the API maps each to an HTTP status and a JSON body."""

from __future__ import annotations

from pneumodesk.errors import PneumoDeskError


class CoordinatorError(PneumoDeskError):
    """An error a node or operator can act on; ``str(error)`` is the message they see."""

    status = 400
    code = "bad_request"


class NotFound(CoordinatorError):
    status = 404
    code = "not_found"


class Conflict(CoordinatorError):
    status = 409
    code = "conflict"


class Unauthorised(CoordinatorError):
    """Missing, malformed, expired or otherwise unacceptable credentials (deliberately vague to the caller)."""

    status = 401
    code = "unauthorised"


class Forbidden(CoordinatorError):
    status = 403
    code = "forbidden"


class InvalidInput(CoordinatorError):
    status = 422
    code = "invalid_input"


class ConfigurationError(CoordinatorError):
    """The coordinator's folder or configuration is missing or unusable (operator-facing)."""

    code = "configuration"
