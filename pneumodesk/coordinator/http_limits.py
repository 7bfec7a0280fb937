"""HTTP guards in front of every endpoint: a request body size limit (pure ASGI) and in-memory rate limits.

Invariants: a body larger than its limit is refused with 413 and a JSON body before the application sees it, both
when the client announces its length and when it streams; rate limits count per key in a sliding one-minute window
(in-process: with several workers each enforces its own limit).
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from pneumodesk.federation.vocabulary import ErrorCode

Scope = dict[str, Any]
ASGIApp = Callable[..., Any]


class _TooLarge(Exception):
    pass


def _json_response(status: int, error: ErrorCode, message: str,
                   extra_headers: list[tuple[bytes, bytes]] | None = None) -> tuple[list[tuple[bytes, bytes]], bytes]:
    body = json.dumps({"error": error.value, "message": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    return headers + (extra_headers or []), body


class BodySizeLimit:
    """ASGI middleware; ``limit_for(path)`` gives the largest body accepted on that path, in bytes."""

    def __init__(self, app: ASGIApp, limit_for: Callable[[str], int]) -> None:
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None:
            try:
                too_large = int(declared) > limit
            except ValueError:
                too_large = False
            if too_large:
                await self._refuse(send, limit)
                return
        received = 0
        exceeded = started = False

        async def counting_receive() -> dict[str, Any]:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    exceeded = True
                    raise _TooLarge
            return message

        async def guarded_send(message: dict[str, Any]) -> None:
            # Frameworks may catch the error raised while reading and answer 400; the 413 replaces that answer.
            nonlocal started
            if exceeded:
                if message["type"] == "http.response.start" and not started:
                    started = True
                    await self._refuse(send, limit)
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except _TooLarge:
            if not started:
                await self._refuse(send, limit)

    @staticmethod
    async def _refuse(send: Callable, limit: int) -> None:
        headers, body = _json_response(
            413, ErrorCode.BODY_TOO_LARGE, f"The request body is larger than this endpoint accepts ({limit} bytes).",
            [(b"connection", b"close")],
        )
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})


class RateLimiter:
    """At most ``per_minute`` hits per key in any 60-second window."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self._clock = clock
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def blocked(self, key: str) -> float | None:
        """Without recording anything: ``None`` if a hit would be allowed now, else the seconds to wait."""
        now = self._clock()
        with self._lock:
            hits = self._hits.get(key)
            while hits and hits[0] <= now - 60.0:
                hits.popleft()
            if hits is not None and len(hits) >= self.per_minute:
                return max(0.0, hits[0] + 60.0 - now)
            return None

    def forget(self, key: str) -> None:
        """Take back ``key``'s newest hit (an attempt that turned out legitimate, e.g. a successful login)."""
        with self._lock:
            hits = self._hits.get(key)
            if hits:
                hits.pop()

    def hit(self, key: str) -> float | None:
        """Record a hit; ``None`` if allowed, else the seconds to wait before the next one would be."""
        wait = self.blocked(key)
        if wait is not None:
            return wait
        now = self._clock()
        with self._lock:
            hits = self._hits.setdefault(key, deque())
            hits.append(now)
            if len(self._hits) > 100_000:  # bound memory under a flood of distinct keys
                self._hits = {k: v for k, v in self._hits.items() if v and v[-1] > now - 60.0}
            return None
