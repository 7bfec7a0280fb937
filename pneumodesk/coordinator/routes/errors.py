"""Every error leaves as JSON ``{"error": code, "message": sentence}`` (``ErrorBody``; the code from ``ErrorCode``):
service errors, unknown paths, wrong methods, invalid bodies, rate limits and unexpected failures alike."""

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from pneumodesk.federation.errors import FederationError
from pneumodesk.federation.messages import ErrorBody
from pneumodesk.federation.vocabulary import ErrorCode

from ..errors import CoordinatorError
from .context import RateLimited

log = logging.getLogger("pneumodesk.coordinator.api")
DATABASE_RETRY_SECONDS = 2


def error_response(status: int, code: ErrorCode, message: str, details: list[dict[str, object]] | None = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    body = ErrorBody(error=code.value, message=message, details=details).model_dump(exclude_none=True)
    return JSONResponse(body, status_code=status, headers=headers)


async def _coordinator_error(_request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, CoordinatorError)
    return error_response(error.status, error.code, str(error))


async def _federation_error(_request: Request, error: Exception) -> JSONResponse:
    return error_response(422, ErrorCode.INVALID_INPUT, str(error))


async def _validation_error(_request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    details: list[dict[str, object]] = [
        {"location": ".".join(str(p) for p in item.get("loc", ())), "problem": item.get("msg", "")}
        for item in error.errors()]
    summary = "; ".join(f"{d['location']}: {d['problem']}" for d in details[:5])
    return error_response(422, ErrorCode.INVALID_INPUT, f"The request is not valid: {summary}.", details)


async def _http_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, StarletteHTTPException)
    if error.status_code == 404:
        return error_response(404, ErrorCode.NOT_FOUND, f"There is no endpoint at {request.url.path}.")
    if error.status_code == 405:
        return error_response(405, ErrorCode.METHOD_NOT_ALLOWED,
                              f"{request.method} is not allowed on {request.url.path}.",
                              headers=dict(error.headers or {}))
    return error_response(error.status_code, ErrorCode.HTTP_ERROR, str(error.detail))


async def _rate_limited(_request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RateLimited)
    seconds = max(1, int(error.wait + 0.999))
    return error_response(429, ErrorCode.RATE_LIMITED, f"Too many attempts; try again in {seconds} s.",
                          headers={"Retry-After": str(seconds)})


async def _unexpected(_request: Request, error: Exception) -> JSONResponse:
    log.error("Unexpected error: %s", type(error).__name__)
    return error_response(500, ErrorCode.INTERNAL_ERROR,
                          "The coordinator hit an unexpected error; the operator can see the log.")


def database_unavailable(error: OperationalError) -> bool:
    """Whether the database could not be reached or was going away (PostgreSQL restarting, a connection cut, SQLite
    locked past its timeout), rather than refusing a statement: the same request may succeed a moment later."""
    if error.connection_invalidated:
        return True
    if type(error.orig).__module__.startswith("psycopg"):
        # no SQLSTATE: the connection failed or was cut; 08: connection exception; 57P: the server shutting down or
        # starting; 40: a deadlock or serialisation failure rolled back. Not a full disk or a cancelled statement.
        state = getattr(error.orig, "sqlstate", None)
        return state is None or state.startswith(("08", "40", "57P"))
    return "database is locked" in str(error.orig)


async def _database_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, OperationalError)
    if not database_unavailable(error):
        return await _unexpected(request, error)
    first_line = next(iter(str(error.orig).splitlines()), "") if error.orig else ""
    log.warning("The database was unavailable for %s %s: %s", request.method, request.url.path,
                first_line or type(error.orig or error).__name__)
    return error_response(503, ErrorCode.UNAVAILABLE,
                          "The coordinator cannot reach its database just now (it may be restarting). Send the "
                          f"request again in {DATABASE_RETRY_SECONDS} s: an update already counted is not counted "
                          "twice.",
                          headers={"Retry-After": str(DATABASE_RETRY_SECONDS)})


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(CoordinatorError, _coordinator_error)
    app.add_exception_handler(FederationError, _federation_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RateLimited, _rate_limited)
    app.add_exception_handler(OperationalError, _database_error)
    app.add_exception_handler(Exception, _unexpected)
