"""The client transport against small real HTTPS servers on 127.0.0.1: CA pinning despite REQUESTS_CA_BUNDLE,
retries of what is safe to retry, typed errors with the server's message, and egress recording of every attempt."""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from pneumodesk.client.errors import CoordinatorUnreachable, NotAuthorised, Refused, TlsFailure
from pneumodesk.client.transport import EgressEvent, Timeouts, Transport, normalise_url
from pneumodesk.coordinator.config import CoordinatorPaths
from pneumodesk.coordinator.tls import create_certificates

Handler = Callable[[BaseHTTPRequestHandler], tuple[int, dict[str, str], bytes]]


def make_ca(root: Path) -> CoordinatorPaths:
    paths = CoordinatorPaths(root)
    root.mkdir(parents=True)
    create_certificates(paths, ["127.0.0.1"], root.name)
    return paths


class Server:
    """A real HTTPS server whose answers come from ``respond``; it keeps what it received."""

    def __init__(self, paths: CoordinatorPaths, respond: Handler) -> None:
        self.received: list[tuple[str, str, dict[str, str], bytes]] = []
        server = self

        class _Handler(BaseHTTPRequestHandler):
            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                server.received.append((self.command, self.path, dict(self.headers), body))
                status, headers, payload = respond(self)
                self.send_response(status)
                for key, value in {"Content-Length": str(len(payload)), **headers}.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = _any

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(paths.server_cert, paths.server_key)
        self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def ok_json(_handler: BaseHTTPRequestHandler) -> tuple[int, dict[str, str], bytes]:
    return 200, {"Content-Type": "application/json"}, b'{"status":"ok"}'


@pytest.fixture
def cas(tmp_path: Path) -> tuple[CoordinatorPaths, CoordinatorPaths]:
    return make_ca(tmp_path / "federation"), make_ca(tmp_path / "stranger")


@pytest.fixture
def server_factory() -> Iterator[Callable[[CoordinatorPaths, Handler], Server]]:
    servers: list[Server] = []

    def make(paths: CoordinatorPaths, respond: Handler) -> Server:
        servers.append(Server(paths, respond))
        return servers[-1]

    yield make
    for server in servers:
        server.close()


class Egress:
    def __init__(self) -> None:
        self.rows: list[tuple] = []

    def record(self, method, endpoint, bytes_sent, bytes_received, status, purpose) -> None:
        self.rows.append((method, endpoint, bytes_sent, bytes_received, status, purpose))


def test_a_server_not_signed_by_the_pinned_ca_is_refused_even_when_requests_ca_bundle_trusts_it(
        cas, server_factory, monkeypatch):
    federation, stranger = cas
    impostor = server_factory(stranger, ok_json)  # a server whose certificate the *stranger* CA signed
    # The environment trusts the stranger's CA, as REQUESTS_CA_BUNDLE does for the system store on this machine.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(stranger.ca_cert))
    # The pitfall this guards against: a session-level verify is silently replaced by REQUESTS_CA_BUNDLE.
    naive = requests.Session()
    naive.verify = str(federation.ca_cert)
    assert naive.get(f"{impostor.url}/api/v1/health", timeout=5).status_code == 200
    egress = Egress()
    transport = Transport(impostor.url, federation.ca_cert, egress=egress, retries=0)

    with pytest.raises(TlsFailure, match="not signed by the federation CA"):
        transport.send("GET", "/health", purpose="health")

    assert len(impostor.received) == 1  # only the naive session's request reached it
    assert egress.rows == [("GET", "/api/v1/health", 0, 0, None, "health")]  # nothing of the request left
    genuine = server_factory(federation, ok_json)
    assert Transport(genuine.url, federation.ca_cert).send("GET", "/health", purpose="health").json() == {
        "status": "ok"}


def test_get_and_put_are_retried_on_503_with_retry_after_but_post_is_not(cas, server_factory):
    federation, _ = cas
    answers = {"GET": [503, 503, 200], "PUT": [502, 200], "POST": [503, 200]}

    def respond(handler: BaseHTTPRequestHandler) -> tuple[int, dict[str, str], bytes]:
        status = answers[handler.command].pop(0)
        if status != 200:
            return status, {"Retry-After": "0", "Content-Type": "application/json"}, json.dumps(
                {"error": "unavailable", "message": "The coordinator is busy."}).encode()
        return ok_json(handler)

    server = server_factory(federation, respond)
    egress, events = Egress(), []
    transport = Transport(server.url, federation.ca_cert, egress=egress, recorder=events.append, backoff=0.01)

    assert transport.send("GET", "/plans", purpose="status").status_code == 200
    assert transport.send("PUT", "/rounds/1/update", purpose="upload", data=b"x" * 100).status_code == 200
    with pytest.raises(Refused) as refused:
        transport.send("POST", "/plans/abc/join", purpose="join")

    assert refused.value.status == 503 and str(refused.value) == "The coordinator is busy."
    assert [r[0] for r in server.received] == ["GET", "GET", "GET", "PUT", "PUT", "POST"]
    # every attempt that reached the network is in the egress log, with its status and the body's bytes
    assert [(r[0], r[4]) for r in egress.rows] == [("GET", 503), ("GET", 503), ("GET", 200), ("PUT", 502),
                                                   ("PUT", 200), ("POST", 503)]
    assert all(r[2] > 100 for r in egress.rows if r[0] == "PUT")
    assert len(events) == len(egress.rows) and events[-1].purpose == "join"


def test_errors_are_typed_with_the_servers_message_and_a_401_refreshes_the_token_once(cas, server_factory):
    federation, _ = cas

    class Tokens:
        def __init__(self) -> None:
            self.issued = 0

        def token(self) -> str:
            self.issued += 1
            return f"token-{self.issued}"

        def invalidate(self) -> None:
            pass

    def respond(handler: BaseHTTPRequestHandler) -> tuple[int, dict[str, str], bytes]:
        if handler.headers.get("Authorization") == "Bearer token-1":
            return 401, {}, b'{"error":"unauthorised","message":"The token has expired."}'
        if handler.path.endswith("/gone"):
            return 404, {}, b'{"error":"not_found","message":"There is no plan with this sha256."}'
        return ok_json(handler)

    server = server_factory(federation, respond)
    tokens = Tokens()
    events: list[EgressEvent] = []
    transport = Transport(server.url, federation.ca_cert, tokens=tokens, recorder=events.append)

    assert transport.send("GET", "/plans", purpose="status", auth=True).status_code == 200
    assert tokens.issued == 2  # refreshed once after the 401
    assert all(e.headers["Authorization"] == "Bearer <redacted>" for e in events)
    with pytest.raises(Refused, match=r"There is no plan with this sha256\.") as missing:
        transport.send("GET", "/plans/gone", purpose="status", auth=True)
    assert missing.value.status == 404 and missing.value.code == "not_found"

    always = Tokens()
    always.token = lambda: "token-1"  # type: ignore[method-assign]
    with pytest.raises(NotAuthorised, match=r"The token has expired\."):
        Transport(server.url, federation.ca_cert, tokens=always).send("GET", "/plans", purpose="s", auth=True)


def test_an_unreachable_coordinator_is_a_plain_typed_error_and_is_logged_with_nothing_sent(cas):
    federation, _ = cas
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    egress = Egress()
    transport = Transport(f"https://127.0.0.1:{port}", federation.ca_cert, egress=egress, retries=1, backoff=0.01,
                          timeouts=Timeouts(1.0, 1.0))

    with pytest.raises(CoordinatorUnreachable, match=f"The coordinator at https://127.0.0.1:{port} cannot be "):
        transport.send("POST", "/nodes/enrol", purpose="enrolment", json_body={"code": "x"})

    assert egress.rows and all(row[2] == 0 and row[4] is None for row in egress.rows)


class ConnectProxy:
    """A minimal HTTP CONNECT proxy on 127.0.0.1 that tunnels TLS and counts the bytes going each way."""

    def __init__(self) -> None:
        import socket

        self.listener = socket.create_server(("127.0.0.1", 0))
        self.targets: list[str] = []
        self.upstream_bytes = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.listener.getsockname()[1]}"

    def _serve(self) -> None:
        import socket

        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            request = b""
            while b"\r\n\r\n" not in request:
                request += client.recv(4096)
            target = request.split(b" ")[1].decode()
            self.targets.append(target)
            host, port = target.rsplit(":", 1)
            upstream = socket.create_connection((host, int(port)))
            client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            threading.Thread(target=self._pipe, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, False), daemon=True).start()

    def _pipe(self, source, sink, count: bool) -> None:  # type: ignore[no-untyped-def]
        try:
            while chunk := source.recv(65536):
                if count:
                    self.upstream_bytes += len(chunk)
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            sink.close()

    def close(self) -> None:
        self.listener.close()


def test_requests_go_through_the_configured_proxy_and_the_tunnel_carries_no_more_than_tls_overhead(
        cas, server_factory):
    federation, _ = cas
    server = server_factory(federation, ok_json)
    proxy = ConnectProxy()
    egress = Egress()
    transport = Transport(server.url, federation.ca_cert, egress=egress, proxies={"https": proxy.url})
    body = bytes(range(256)) * 40

    transport.send("PUT", "/rounds/1/update", purpose="upload", data=body)
    transport.close()

    assert proxy.targets == [server.url.removeprefix("https://")]
    recorded = sum(row[2] for row in egress.rows)
    assert recorded > len(body)
    # what crossed the tunnel = the recorded request + TLS handshake and record overhead (a few kB at most)
    assert recorded < proxy.upstream_bytes < recorded + 4096
    proxy.close()


def test_proxies_from_node_settings_are_used(cas, server_factory):
    federation, _ = cas
    server = server_factory(federation, ok_json)
    transport = Transport(server.url, federation.ca_cert, proxies={"https": "http://127.0.0.1:9"}, retries=0,
                          timeouts=Timeouts(1.0, 1.0))

    with pytest.raises(CoordinatorUnreachable, match="proxy"):
        transport.send("GET", "/health", purpose="health")
    assert server.received == []  # the request went to the (dead) proxy, not around it


@pytest.mark.parametrize("typed, expected", [
    ("https://coord.example.org:8443/", "https://coord.example.org:8443"),
    ("https://coord.example.org/api/v1", "https://coord.example.org"),
])
def test_addresses_are_normalised(typed, expected):
    assert normalise_url(typed) == expected


@pytest.mark.parametrize("typed", ["http://coord.example.org", "coord.example.org", "https://x/other/path"])
def test_non_https_or_odd_addresses_are_refused(typed):
    with pytest.raises(ValueError, match="https://"):
        normalise_url(typed)
