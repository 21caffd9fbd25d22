"""A fault-injecting S3 proxy on loopback, between the engine and a real S3 server (SeaweedFS in the tests).

Requests are forwarded unchanged (Host header included, so the client's SigV4 signature stays valid) with
urllib3, except those a :class:`Fault` picks: the n-th request matching a method, a query/path test and a
User-Agent can be answered with 500 InternalError, 503 SlowDown, 403 AccessDenied, a 301 PermanentRedirect or
307 TemporaryRedirect, a TCP reset (no response at all), a lost answer (forwarded, so the server acts on it, then
the connection reset instead of the answer), a stall (the reply held back for a while, so the
client's read timeout fires), or forwarded without ``If-None-Match`` / ``If-Match`` (a server that ignores
conditional requests: the request is signed again with the test credentials, because botocore signs those
headers).

It also serves as a forward HTTP proxy (``HTTP_PROXY``): requests in absolute form are forwarded the same way
and recorded in ``proxied``; with ``tls=(cert, key)`` it serves HTTPS.

    with FaultProxy(server.endpoint_url, credentials) as proxy:
        proxy.inject(Fault("500", method="GET", query="list-type=2", nth=2))
        client = proxy.client()

Written for the tests (no library proxies S3 with fault injection on loopback); ``http.server`` serves,
urllib3 forwards, botocore re-signs.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import urllib3

KINDS = ("500", "503", "400", "403", "301", "307", "reset", "lost-answer", "stall", "strip-conditions")
_ERRORS = {
    "500": (500, "InternalError", "We encountered an internal error. Please try again."),
    "503": (503, "SlowDown", "Please reduce your request rate."),
    "400": (400, "InvalidRequest", "The request is not valid for this object."),
    "403": (403, "AccessDenied", "Access Denied"),
    "301": (301, "PermanentRedirect", "The bucket you are attempting to access must be addressed using the "
            "specified endpoint."),
    "307": (307, "TemporaryRedirect", "Please re-send this request to the specified temporary endpoint."),
}  # fmt: skip
_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade"}


@dataclass
class Fault:
    """Hit the ``nth`` request (1-based, counted from injection) that matches; ``times`` consecutive matches."""

    kind: str
    method: str | None = None
    query: str | None = None  # a substring of the query string, e.g. "list-type=2" (ListObjectsV2)
    path: str | None = None  # a substring of the path
    header: str | None = None  # a request header that must be present, e.g. "If-None-Match"
    agent: str | None = None  # a substring of the User-Agent, e.g. "fast-transport" (not boto3's requests)
    nth: int = 1
    times: int = 1
    stall: float = 3.0
    seen: int = 0
    fired: int = 0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}: one of {KINDS}")

    def matches(self, method: str, path: str, query: str, headers: Any) -> bool:
        if self.method is not None and method != self.method:
            return False
        if self.query is not None and self.query not in query:
            return False
        if self.path is not None and self.path not in path:
            return False
        if self.agent is not None and self.agent not in headers.get("User-Agent", ""):
            return False
        return self.header is None or self.header in headers

    def take(self) -> bool:
        self.seen += 1
        if self.nth <= self.seen < self.nth + self.times:
            self.fired += 1
            return True
        return False


@dataclass
class Credentials:
    access_key: str
    secret_key: str
    region: str = "us-east-1"


@dataclass
class FaultProxy:
    upstream: str
    credentials: Credentials
    faults: list[Fault] = field(default_factory=list)
    log: list[tuple[str, str, str]] = field(default_factory=list)  # (method, path?query, what happened)
    proxied: list[tuple[str, str, str]] = field(default_factory=list)  # absolute-form: (method, URL, User-Agent)
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)  # (method, path, headers lower-case)
    tls: tuple[Any, Any] | None = None  # (certificate file, key file): serve HTTPS
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None
    _pool: urllib3.HTTPConnectionPool | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _open: set[socket.socket] = field(default_factory=set)  # client connections, closed by stop()

    @property
    def endpoint_url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        if self.tls is not None:
            return f"https://localhost:{port}"  # the name in the test certificate
        return f"http://{host}:{port}"

    def inject(self, *faults: Fault) -> None:
        with self._lock:
            self.faults.extend(faults)

    def clear(self) -> None:
        with self._lock:
            self.faults.clear()
            self.log.clear()
            self.proxied.clear()
            self.requests.clear()

    def _pick(self, method: str, path: str, query: str, headers: Any) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.matches(method, path, query, headers) and fault.take():
                    return fault
        return None

    def start(self) -> FaultProxy:
        target = urlsplit(self.upstream)
        self._pool = urllib3.HTTPConnectionPool(
            target.hostname or "127.0.0.1", target.port, maxsize=16, retries=False, timeout=30.0
        )
        self._server = _Server(("127.0.0.1", 0), _handler(self))
        if self.tls is not None:
            import ssl

            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(str(self.tls[0]), str(self.tls[1]))
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(target=self._server.serve_forever, name="fault-proxy", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, cut every client connection, and wait for the handler threads to end."""
        if self._server is not None:
            self._server.shutdown()
            with self._lock:
                for conn in self._open:
                    with contextlib.suppress(OSError):
                        conn.shutdown(socket.SHUT_RDWR)
            self._server.server_close()  # joins the handler threads (block_on_close)
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def client(self, verify: bool | str | None = None, **config: Any) -> Any:
        """A boto3 S3 client through the proxy (path-style; read timeout 1 s so a stall is noticed quickly)."""
        import boto3
        from botocore.config import Config

        settings = {"s3": {"addressing_style": "path"}, "read_timeout": 1, "connect_timeout": 2, **config}
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self.credentials.access_key,
            aws_secret_access_key=self.credentials.secret_key,
            region_name=self.credentials.region,
            config=Config(**settings),
            verify=verify,
        )

    def _resign(self, method: str, url: str, headers: dict[str, str], body: bytes) -> dict[str, str]:
        from botocore.auth import S3SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials as BotoCredentials

        drop = {"authorization", "x-amz-date", "if-none-match", "if-match"}
        kept = {k: v for k, v in headers.items() if k.lower() not in drop}
        request = AWSRequest(method=method, url=url, data=body, headers=kept)
        creds = BotoCredentials(self.credentials.access_key, self.credentials.secret_key)
        S3SigV4Auth(creds, "s3", self.credentials.region).add_auth(request)
        return dict(request.headers.items())


class _Server(ThreadingHTTPServer):
    daemon_threads = False
    block_on_close = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that gave up (after a stall or reset, or at stop) is expected here, not an error."""
        import sys

        if not isinstance(sys.exc_info()[1], (ConnectionError, OSError)):
            super().handle_error(request, client_address)


def _handler(proxy: FaultProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            with proxy._lock:
                proxy._open.add(self.connection)

        def finish(self) -> None:
            with proxy._lock:
                proxy._open.discard(self.connection)
            with contextlib.suppress(OSError):
                super().finish()

        def log_message(self, format: str, *args: Any) -> None:
            return

        def _body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                chunks = []
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                    if size == 0:
                        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                            pass  # trailers are dropped
                        return b"".join(chunks)
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def _handle(self) -> None:
            method = self.command
            if self.path.startswith(("http://", "https://")):  # a forward-proxy request: keep the origin form
                with proxy._lock:
                    proxy.proxied.append((method, self.path, self.headers.get("User-Agent", "")))
                target = urlsplit(self.path)
                self.path = target.path + (f"?{target.query}" if target.query else "")
            path, _, query = self.path.partition("?")
            body = self._body()
            fault = proxy._pick(method, path, query, self.headers)
            what = fault.kind if fault is not None else "forwarded"
            proxy.log.append((method, self.path, what))
            with proxy._lock:
                proxy.requests.append((method, self.path, {k.lower(): v for k, v in self.headers.items()}))
            if fault is not None and fault.kind in _ERRORS:
                return self._error(*_ERRORS[fault.kind])
            if fault is not None and fault.kind == "reset":
                return self._reset()
            if fault is not None and fault.kind == "stall":
                time.sleep(fault.stall)
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                headers["Content-Length"] = str(len(body))
            if fault is not None and fault.kind == "strip-conditions":
                url = f"http://{self.headers['Host']}{self.path}"
                headers = proxy._resign(method, url, headers, body)
            self._forward(method, headers, body, lost=fault is not None and fault.kind == "lost-answer")

        def _forward(self, method: str, headers: dict[str, str], body: bytes, lost: bool = False) -> None:
            pool = proxy._pool
            if pool is None:  # stopped while this request stalled
                return self._reset()
            resp = pool.urlopen(
                method, self.path, body=body or None, headers=headers, redirect=False,
                preload_content=True, decode_content=False, assert_same_host=False,
            )  # fmt: skip
            if lost:  # the server acted on it; the client never hears
                return self._reset()
            data = resp.data or b""
            self.send_response_only(resp.status, resp.reason)
            for name, value in resp.headers.items():
                if name.lower() not in _HOP and name.lower() != "content-length":
                    self.send_header(name, value)
            length = resp.headers.get("Content-Length") if method == "HEAD" else str(len(data))
            if length is not None:
                self.send_header("Content-Length", length)
            self.end_headers()
            if method != "HEAD":
                self.wfile.write(data)

        def _error(self, status: int, code: str, message: str) -> None:
            payload = (
                f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message>'
                f"<RequestId>fault-proxy</RequestId></Error>"
            ).encode()
            self.send_response_only(status)
            if status in (301, 307):
                self.send_header("x-amz-bucket-region", "eu-west-3")
                self.send_header("Location", f"http://127.0.0.1:9{self.path}")  # nowhere: never followed here
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("x-amz-request-id", "fault-proxy")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)

        def _reset(self) -> None:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            self.connection.close()

        do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle

    return Handler


def every_fault_at(position: int, *, method: str = "GET", query: str = "list-type=2") -> list[Callable[[], Fault]]:
    """One factory per fault kind (other than strip-conditions) hitting the ``position``-th matching request."""
    return [
        lambda kind=kind: Fault(kind, method=method, query=query, nth=position, stall=2.5)  # type: ignore[misc]
        for kind in ("500", "503", "reset", "stall")
    ]
