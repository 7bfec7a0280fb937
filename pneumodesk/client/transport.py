"""HTTPS to the coordinator: one ``send()`` that every request goes through, verifies against the pinned CA, retries
what is safe to retry, maps failures to typed errors and records what left the machine.

Invariants:
- ``verify=<pinned CA file>`` is passed on every request. (A session-level ``verify`` is not enough: with
  ``trust_env`` requests replaces it by ``$REQUESTS_CA_BUNDLE``, which would trust the whole system store.)
- No code path turns verification off; a certificate not signed by the pinned CA raises ``TlsFailure``.
- Proxies come from the environment (``HTTPS_PROXY``/``NO_PROXY``) and from node settings (``proxies``).
- urllib3 retries connection failures for every method (nothing was sent yet) and 429/502/503/504 answers —
  honouring ``Retry-After`` — only for idempotent methods (GET, HEAD, PUT: an upload is identified by its sha256).
- Every attempt that reached the network is recorded in the egress log (method, path without query, bytes sent
  including headers and body, bytes received, status, purpose) and passed to the optional ``recorder``.
- Tokens never appear in an egress record: the ``Authorization`` value is redacted before the recorder sees it.
- No answer is read past a size limit (``max_body``: ``DEFAULT_MAX_BODY`` unless the caller knows better, as a
  model download does from the plan's architecture): bodies are streamed, a declared ``Content-Length`` over the
  limit is refused before reading, and reading stops at the first byte past it (decompressed bytes count), so a
  coordinator cannot exhaust the node's memory; such an answer is a ``ProtocolError``.
- ``interrupt()`` (any thread) ends the requests in flight at once — their sockets are shut down, they are recorded
  as usual and not retried — so stopping never waits for a long poll; requests sent afterwards work normally.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPSConnection
from urllib3.connectionpool import HTTPSConnectionPool
from urllib3.exceptions import MaxRetryError
from urllib3.util.retry import Retry

from pneumodesk import __version__
from pneumodesk.federation.messages import API_PREFIX
from pneumodesk.federation.vocabulary import ErrorCode, RefusalReason

from .errors import CoordinatorUnreachable, NotAuthorised, ProtocolError, Refused, TlsFailure

log = logging.getLogger(__name__)

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "OPTIONS"})
RETRY_STATUSES = (429, 502, 503, 504)
USER_AGENT = f"PneumoDesk-node/{__version__}"
DEFAULT_MAX_BODY = 16 * 1024 * 1024  # every answer but a model download is a small JSON document
_CHUNK = 1024 * 1024


class EgressSink(Protocol):
    """What the transport needs of the node's egress log (``NodeService.egress``)."""

    def record(self, method: str, endpoint: str, bytes_sent: int, bytes_received: int, status: int | None,
               purpose: str) -> None: ...


class TokenSource(Protocol):
    """Hands out a bearer token; ``invalidate`` makes the next ``token()`` fetch a fresh one."""

    def token(self) -> str: ...

    def invalidate(self) -> None: ...


@dataclass(frozen=True)
class EgressEvent:
    """One request exactly as it left (headers with the token redacted, the full body) and what came back."""

    method: str
    endpoint: str
    query: str
    purpose: str
    status: int | None
    bytes_sent: int
    bytes_received: int
    headers: Mapping[str, str] = field(repr=False)
    body: bytes = field(repr=False)


@dataclass(frozen=True)
class Timeouts:
    connect: float = 5.0
    read: float = 60.0


DEFAULT_TIMEOUTS = Timeouts()


def normalise_url(url: str) -> str:
    """``https://host:port`` from whatever an admin typed (trailing slash or /api/v1 allowed); https only."""
    text = url.strip().rstrip("/")
    if text.endswith(API_PREFIX):
        text = text[: -len(API_PREFIX)]
    parts = urlsplit(text)
    if parts.scheme != "https" or not parts.netloc:
        raise ValueError(f"The coordinator address must start with https:// and name a host, not {url!r}.")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"The coordinator address must be just https://host[:port], not {url!r}.")
    return f"https://{parts.netloc}"


class _Bearer(requests.auth.AuthBase):
    """Sets the Authorization header (and, being an explicit auth, keeps requests from reading ~/.netrc)."""

    def __init__(self, token: str | None) -> None:
        self._token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        if self._token is not None:
            request.headers["Authorization"] = f"Bearer {self._token}"
        return request


def _header_bytes(start_line: str, headers: Mapping[str, str]) -> int:
    return len(start_line) + 2 + sum(len(k) + 2 + len(str(v)) + 2 for k, v in headers.items()) + 2


class _RecordingRetry(Retry):
    """urllib3 ``Retry`` that reports every attempt it is about to repeat, so retried attempts reach the egress log
    too (the final attempt is recorded by ``Transport``), and gives up at once when ``allowed()`` says so."""

    observer: Callable[[Any, Exception | None], None] | None = None
    allowed: Callable[[], bool] | None = None

    def new(self, **kwargs: Any) -> _RecordingRetry:
        fresh = super().new(**kwargs)
        fresh.observer, fresh.allowed = self.observer, self.allowed
        return fresh

    def increment(self, method: str | None = None, url: str | None = None, response: Any = None,
                  error: Exception | None = None, _pool: Any = None, _stacktrace: Any = None) -> _RecordingRetry:
        if self.allowed is not None and not self.allowed():
            raise MaxRetryError(_pool, url or "", error)
        fresh = super().increment(method, url, response, error, _pool, _stacktrace)  # raises when exhausted
        if self.observer is not None:
            self.observer(response, error if error is None or not self._is_connection_error(error) else _NOT_SENT)
        return fresh


class _NotSent(Exception):
    """Marks an attempt that failed before any byte of the request left (connection refused or timed out)."""


_NOT_SENT = _NotSent()


def _nothing_sent(error: BaseException) -> bool:
    """Whether a requests exception means the connection never carried the request."""
    from urllib3.exceptions import ConnectTimeoutError, MaxRetryError, NewConnectionError

    if isinstance(error, (requests.exceptions.ConnectTimeout, requests.exceptions.SSLError,
                          requests.exceptions.ProxyError)):
        return True
    reason = error.args[0] if error.args else None
    if isinstance(reason, MaxRetryError):
        reason = reason.reason
    return isinstance(reason, (NewConnectionError, ConnectTimeoutError))


def _tracking_pool(connections: weakref.WeakSet) -> type[HTTPSConnectionPool]:
    """An HTTPS connection pool class whose connections add themselves to ``connections`` once connected."""

    class TrackedConnection(HTTPSConnection):
        def connect(self) -> None:
            super().connect()
            connections.add(self)

    class TrackedPool(HTTPSConnectionPool):
        ConnectionCls = TrackedConnection

    return TrackedPool


class _TrackingAdapter(HTTPAdapter):
    """``HTTPAdapter`` whose HTTPS connections (direct or through a proxy) are tracked, for ``Transport.interrupt``."""

    def __init__(self, connections: weakref.WeakSet, **kwargs: Any) -> None:
        self._pool_class = _tracking_pool(connections)  # before super(): it builds the pool manager
        super().__init__(**kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {**self.poolmanager.pool_classes_by_scheme,
                                                   "https": self._pool_class}

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        manager.pool_classes_by_scheme = {**manager.pool_classes_by_scheme, "https": self._pool_class}
        return manager


class _TooLarge(Exception):
    def __init__(self, read: int) -> None:
        super().__init__(read)
        self.read = read


def _read_body(response: requests.Response, limit: int) -> int:
    """Read a streamed answer's body into ``response.content``, at most ``limit`` bytes; returns the bytes read.
    Past the limit (declared or actual) the connection is closed and ``_TooLarge`` raised."""
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > limit:
        response.close()
        raise _TooLarge(0)
    chunks: list[bytes] = []
    read = 0
    for chunk in response.iter_content(chunk_size=_CHUNK):
        read += len(chunk)
        if read > limit:
            response.close()
            raise _TooLarge(read)
        chunks.append(chunk)
    response._content = b"".join(chunks)  # what ``response.content`` returns from now on
    response._content_consumed = True  # type: ignore[attr-defined]
    return read


def _size_text(size: int) -> str:
    return f"{size / 1e6:.1f} MB" if size >= 100_000 else f"{size} bytes"


def _error_code(text: str) -> ErrorCode | None:
    """The coordinator's ``error`` field as an ``ErrorCode``; None for none, or one this version does not know."""
    try:
        return ErrorCode(text)
    except ValueError:
        return None


class Transport:
    """The node's only way to talk to the coordinator at ``base_url`` (``https://host:port``)."""

    def __init__(self, base_url: str, ca_path: Path, *, egress: EgressSink | None = None,
                 recorder: Callable[[EgressEvent], None] | None = None, proxies: Mapping[str, str] | None = None,
                 timeouts: Timeouts = DEFAULT_TIMEOUTS, retries: int = 3, backoff: float = 0.5,
                 tokens: TokenSource | None = None) -> None:
        self.base_url = normalise_url(base_url)
        self.ca_path = Path(ca_path)
        if not self.ca_path.is_file():
            raise TlsFailure(f"The federation CA certificate {self.ca_path} is missing; enrol the node again.")
        self.egress, self.recorder, self.tokens = egress, recorder, tokens
        self.timeouts = timeouts
        self.proxies = dict(proxies or {})
        self.session = requests.Session()
        self.session.headers["User-Agent"] = USER_AGENT
        retry = _RecordingRetry(total=retries, connect=retries, read=retries, status=retries, other=0,
                      allowed_methods=IDEMPOTENT_METHODS, status_forcelist=RETRY_STATUSES, backoff_factor=backoff,
                      backoff_max=10.0, respect_retry_after_header=True, raise_on_status=False,
                      raise_on_redirect=True)
        retry.observer, retry.allowed = self._retried, self._may_retry
        self._current = threading.local()
        self._connections: weakref.WeakSet = weakref.WeakSet()
        self._interruptions = 0  # attempts begun before the latest interrupt() are not retried
        self.session.mount("https://", _TrackingAdapter(self._connections, max_retries=retry))
        self.session.mount("http://", HTTPAdapter(max_retries=0))  # never used for the coordinator

    def close(self) -> None:
        self.session.close()

    def interrupt(self) -> None:
        """End the requests in flight now (from any thread): they fail as ``CoordinatorUnreachable`` without retry.
        Idle keep-alive connections close too; the next request opens a fresh one."""
        self._interruptions += 1
        for connection in list(self._connections):
            sock = connection.sock
            if sock is not None:  # the plain socket call: the TLS object stays to its own thread
                with contextlib.suppress(OSError):
                    socket.socket.shutdown(sock, socket.SHUT_RDWR)

    def _may_retry(self) -> bool:
        return getattr(self._current, "interruptions", None) == self._interruptions

    def url(self, path: str) -> str:
        return f"{self.base_url}{API_PREFIX}{path}"

    def send(self, method: str, path: str, *, purpose: str, json_body: Any = None, data: bytes | None = None,
             headers: Mapping[str, str] | None = None, params: Mapping[str, Any] | None = None, auth: bool = False,
             read_timeout: float | None = None, ok: tuple[int, ...] = (200, 201),
             max_body: int = DEFAULT_MAX_BODY) -> requests.Response:
        """Send one request (path under /api/v1); returns the response when its status is in ``ok``, its body read
        (at most ``max_body`` bytes, else ``ProtocolError``).

        With ``auth`` a bearer token from ``tokens`` is attached; a 401 invalidates it and the request is sent once
        more with a fresh token. Raises ``CoordinatorUnreachable``, ``TlsFailure``, ``NotAuthorised`` or
        ``Refused`` (carrying the coordinator's own message).
        """
        if auth and self.tokens is None:
            raise NotAuthorised("This node has no identity to sign in with; enrol it first.", 401)
        body = data
        sent_headers = dict(headers or {})
        if json_body is not None:
            body = json.dumps(json_body, separators=(",", ":")).encode()
            sent_headers["Content-Type"] = "application/json"
        response = self._attempt(method, path, purpose, body, sent_headers, params, auth, read_timeout, max_body)
        if auth and response.status_code == 401 and self.tokens is not None:
            self.tokens.invalidate()
            response = self._attempt(method, path, purpose, body, sent_headers, params, auth, read_timeout, max_body)
        if response.status_code in ok:
            return response
        raise self._refusal(response)

    def _attempt(self, method: str, path: str, purpose: str, body: bytes | None, headers: dict[str, str],
                 params: Mapping[str, Any] | None, auth: bool, read_timeout: float | None,
                 max_body: int) -> requests.Response:
        token = self.tokens.token() if auth and self.tokens is not None else None
        request = requests.Request(method, self.url(path), data=body, headers=headers, params=params,
                                   auth=_Bearer(token))
        prepared = self.session.prepare_request(request)
        settings = self.session.merge_environment_settings(prepared.url, dict(self.proxies), None, None, None)
        timeout = (self.timeouts.connect, read_timeout or self.timeouts.read)
        status: int | None = None
        received = 0
        sent_request = True
        self._current.attempt = (prepared, path, purpose)
        self._current.interruptions = self._interruptions
        try:
            response = self.session.send(prepared, timeout=timeout, allow_redirects=False,
                                         proxies=settings["proxies"], verify=str(self.ca_path), stream=True)
            status = response.status_code
            received = _header_bytes(f"HTTP/1.1 {status} {response.reason}", response.headers)
            try:
                received += _read_body(response, max_body)
            except _TooLarge as error:
                received += error.read
                raise ProtocolError(f"The coordinator's answer ({purpose}) is larger than the "
                                    f"{_size_text(max_body)} this node accepts for it; the node stopped reading "
                                    "it and discarded it.") from None
            return response
        except requests.exceptions.RequestException as error:
            sent_request = not _nothing_sent(error)
            raise self._unreachable(error, timeout[1]) from None
        finally:
            self._current.attempt = None
            self._record(prepared, path, purpose, status, received, sent_request)

    def _retried(self, response: Any, error: Exception | None) -> None:
        attempt = getattr(self._current, "attempt", None)
        if attempt is None:
            return
        prepared, path, purpose = attempt
        status = getattr(response, "status", None)
        received = 0 if response is None else _header_bytes(f"HTTP/1.1 {status}", dict(response.headers))
        self._record(prepared, path, purpose, status, received, error is not _NOT_SENT)

    def _unreachable(self, error: requests.exceptions.RequestException, read_timeout: float) -> Exception:
        """The typed error for a request that got no HTTP answer."""
        if isinstance(error, requests.exceptions.SSLError):
            return TlsFailure(
                f"The connection to {self.base_url} is not trusted: its certificate is not signed by the "
                "federation CA pinned at enrolment. Nothing was sent. Ask the federation operator."
            )
        if isinstance(error, requests.exceptions.ProxyError):
            return CoordinatorUnreachable(f"The proxy refused or failed the connection to {self.base_url}.")
        if isinstance(error, requests.exceptions.ConnectTimeout):
            return CoordinatorUnreachable(f"The coordinator at {self.base_url} did not accept a connection in "
                                          f"{self.timeouts.connect:g} s.")
        if isinstance(error, requests.exceptions.ReadTimeout):
            return CoordinatorUnreachable(f"The coordinator at {self.base_url} did not answer in {read_timeout:g} s.")
        if isinstance(error, requests.exceptions.RetryError):
            return CoordinatorUnreachable(f"The coordinator at {self.base_url} kept answering that it is "
                                          "unavailable.")
        return CoordinatorUnreachable(f"The coordinator at {self.base_url} cannot be reached.")

    def _record(self, prepared: requests.PreparedRequest, path: str, purpose: str, status: int | None,
                received: int, sent_request: bool = True) -> None:
        """One egress entry per attempt; an attempt whose connection failed records 0 bytes sent."""
        body = prepared.body or b""
        if isinstance(body, str):
            body = body.encode()
        start_line = f"{prepared.method} {prepared.path_url} HTTP/1.1"
        sent = _header_bytes(start_line, prepared.headers) + len(body) if sent_request else 0
        endpoint = API_PREFIX + path
        if self.egress is not None:
            try:
                self.egress.record(prepared.method or "", endpoint, sent, received, status, purpose)
            except Exception:  # fail closed: a request the log cannot record stops the caller
                log.exception("Could not write the egress log entry for %s %s", prepared.method, endpoint)
                raise
        if self.recorder is not None:
            headers = {k: ("Bearer <redacted>" if k.lower() == "authorization" else str(v))
                       for k, v in prepared.headers.items()}
            query = urlsplit(prepared.url or "").query
            self.recorder(EgressEvent(prepared.method or "", endpoint, query, purpose, status, sent, received,
                                      headers, bytes(body) if sent_request else b""))

    @staticmethod
    def _refusal(response: requests.Response) -> Refused:
        """The typed error for an error answer: its code (``ErrorCode``) is what callers decide on."""
        code_text, message = "", ""
        with contextlib.suppress(ValueError, AttributeError):
            payload = response.json()
            code_text, message = str(payload.get("error", "")), str(payload.get("message", ""))
        code = _error_code(code_text)
        if not message:
            message = f"The coordinator answered {response.status_code} {response.reason or ''}".strip() + "."
        if response.status_code in (401, 403):
            reason = RefusalReason.REVOKED if code == ErrorCode.NODE_REVOKED else RefusalReason.NOT_AUTHORISED
            return NotAuthorised(message, response.status_code, code, reason=reason)
        return Refused(message, response.status_code, code)

    def json(self, response: requests.Response) -> Any:
        """The answer's JSON; ``ProtocolError`` for anything else, nesting too deep to read included."""
        try:
            return response.json()
        except (ValueError, RecursionError):
            raise ProtocolError("The coordinator's answer is not valid JSON.") from None
