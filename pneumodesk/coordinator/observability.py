"""Request ids, structured JSON logs and per-request metrics, as one ASGI middleware and a logging formatter.

Every request gets an id (the client's ``X-Request-ID`` when it is a short token of safe characters, else a new
random one), answered in the ``X-Request-ID`` header and attached to every log line written while it is served, so
a node's report and the coordinator's log can be matched. Log lines never hold a token or a secret (the API never
logs headers or bodies).
"""

from __future__ import annotations

import contextvars
import datetime as dt
import json
import logging
import re
import secrets
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .metrics import REQUEST_SECONDS, UPLOAD_BYTES, UPLOADS

REQUEST_ID_HEADER = "x-request-id"
_SAFE_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("pneumodesk_request_id", default=None)


class RequestContext:
    """Gives each HTTP request an id and measures it (route template, method, status class; upload bodies)."""

    def __init__(self, app: ASGIApp, upload_suffix: str) -> None:
        self.app = app
        self.upload_suffix = upload_suffix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope.get("headers") or []).get(REQUEST_ID_HEADER.encode(), b"").decode("latin-1")
        rid = given if _SAFE_ID.fullmatch(given) else secrets.token_hex(8)
        token = request_id.set(rid)
        started = time.perf_counter()
        status = 500
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
            return message

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                message["headers"] = [*message.get("headers", []), (REQUEST_ID_HEADER.encode(), rid.encode())]
            await send(message)

        try:
            await self.app(scope, counting_receive, send_with_id)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            REQUEST_SECONDS.labels(route, scope.get("method", ""), f"{status // 100}xx").observe(
                time.perf_counter() - started)
            if route.endswith(self.upload_suffix) and scope.get("method") == "PUT":
                UPLOADS.labels("accepted" if status == 200 else "refused").inc()
                UPLOAD_BYTES.inc(received)
            request_id.reset(token)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC), level, logger, message, the request id when serving one, and the
    exception's traceback when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(), "logger": record.name, "message": record.getMessage(),
        }
        rid = request_id.get()
        if rid is not None:
            entry["request_id"] = rid
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def log_config(level: str, json_lines: bool) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` for uvicorn and the coordinator (applied in every worker process)."""
    formatter: dict[str, Any] = ({"()": "pneumodesk.coordinator.observability.JsonFormatter"} if json_lines else
                                 {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"})
    return {
        "version": 1, "disable_existing_loggers": False,
        "formatters": {"default": formatter},
        "handlers": {"default": {"class": "logging.StreamHandler", "formatter": "default",
                                 "stream": "ext://sys.stderr"}},
        "root": {"handlers": ["default"], "level": level.upper()},
        "loggers": {name: {"handlers": [], "propagate": True, "level": level.upper()}
                    for name in ("uvicorn", "uvicorn.error", "uvicorn.access")},
    }
