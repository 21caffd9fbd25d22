"""A minimal HTTP/1.1 keep-alive client for small requests (HEAD, LIST pages) to one host.

urllib3 and http.client spend 180-360 µs of CPU per request (email-parser headers, layers of
bookkeeping); this spends ~50 µs, which matters when a 2-core worker HEADs thousands of objects.
It supports exactly what those requests need: requests without a body, responses framed by
Content-Length, chunked encoding or connection close, TLS, timeouts, and a transparent retry when a
pooled connection turns out to have been closed by the server.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from dataclasses import dataclass

MAX_HEADER_BYTES = 64 << 10
RECV = 64 << 10


class WireError(OSError):
    """The exchange failed (transport or malformed response); the caller should fall back."""


class BodyTooLarge(WireError):
    """The response body is larger than the caller accepts (not retried)."""


@dataclass(frozen=True)
class Response:
    status: int
    headers: dict[str, str]  # lower-case names; repeated headers joined with ", "
    body: bytes


class _Conn:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = bytearray()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()

    def _fill(self) -> None:
        chunk = self.sock.recv(RECV)
        if not chunk:
            raise WireError("connection closed by the server")
        self.buf += chunk

    def _line(self) -> bytes:
        while (end := self.buf.find(b"\r\n")) < 0:
            if len(self.buf) > MAX_HEADER_BYTES:
                raise WireError("response line too long")
            self._fill()
        line = bytes(self.buf[:end])
        del self.buf[: end + 2]
        return line

    def _exact(self, size: int, limit: int | None = None) -> bytes:
        if limit is not None and size > limit:
            raise BodyTooLarge(f"response body of {size} bytes exceeds the {limit}-byte limit")
        while len(self.buf) < size:
            self._fill()
        data = bytes(self.buf[:size])
        del self.buf[:size]
        return data

    def read_response(self, method: str, max_body: int | None = None) -> tuple[Response, bool]:
        """(response, reusable); a body larger than ``max_body`` raises WireError (the connection is dropped)."""
        while (end := self.buf.find(b"\r\n\r\n")) < 0:
            if len(self.buf) > MAX_HEADER_BYTES:
                raise WireError("response headers too large")
            self._fill()
        head = bytes(self.buf[:end]).decode("latin-1").split("\r\n")
        del self.buf[: end + 4]
        parts = head[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
            raise WireError(f"not an HTTP/1.x status line: {head[0][:80]!r}")
        status = int(parts[1])
        headers: dict[str, str] = {}
        for line in head[1:]:
            name, sep, value = line.partition(":")
            if not sep:
                raise WireError(f"malformed header line: {line[:80]!r}")
            name = name.strip().lower()
            value = value.strip()
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        reusable = headers.get("connection", "").lower() != "close" and parts[0] != "HTTP/1.0"
        if 100 <= status < 200:
            return self.read_response(method, max_body)  # an interim answer: the real one follows
        if method == "HEAD" or status in (204, 304):
            return Response(status, headers, b""), reusable
        if "chunked" in headers.get("transfer-encoding", "").lower():
            return Response(status, headers, self._chunked(max_body)), reusable
        length = headers.get("content-length")
        if length is not None:
            if not length.isdigit():
                raise WireError(f"bad Content-Length {length!r}")
            return Response(status, headers, self._exact(int(length), max_body)), reusable
        return Response(status, headers, self._to_close(max_body)), False

    def _chunked(self, limit: int | None) -> bytes:
        out = bytearray()
        while True:
            size_text = self._line().split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError as exc:
                raise WireError(f"bad chunk size {size_text[:20]!r}") from exc
            if size == 0:
                while self._line():  # trailers, up to the empty line
                    pass
                return bytes(out)
            out += self._exact(size, None if limit is None else limit - len(out))
            if self._exact(2) != b"\r\n":
                raise WireError("chunk not followed by CRLF")

    def _to_close(self, limit: int | None) -> bytes:
        while True:
            if limit is not None and len(self.buf) > limit:
                raise BodyTooLarge(f"response body exceeds the {limit}-byte limit")
            chunk = self.sock.recv(RECV)
            if not chunk:
                data = bytes(self.buf)
                self.buf.clear()
                return data
            self.buf += chunk


class WirePool:
    """Keep-alive connections to ``host:port`` (TLS when ``tls`` is given), shared by threads."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        tls: ssl.SSLContext | None = None,
        connect_timeout: float = 60.0,
        read_timeout: float = 60.0,
        maxsize: int = 32,
    ) -> None:
        self.host = host
        self.port = port
        self.tls = tls
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.maxsize = maxsize
        self._idle: list[_Conn] = []
        self._lock = threading.Lock()

    def close(self) -> None:
        """Close the idle connections (one in use is closed by its request when it ends)."""
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    def _connect(self) -> _Conn:
        sock = socket.create_connection((self.host, self.port), timeout=self.connect_timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.tls is not None:
            sock = self.tls.wrap_socket(sock, server_hostname=self.host)
        sock.settimeout(self.read_timeout)
        return _Conn(sock)

    def request(self, method: str, target: str, headers: dict[str, str], *, max_body: int | None = None) -> Response:
        """Send ``method target`` and read the whole response; raises WireError/OSError on failure
        (also when the body would exceed ``max_body`` bytes)."""
        lines = [f"{method} {target} HTTP/1.1", *(f"{k}: {v}" for k, v in headers.items()), "", ""]
        payload = "\r\n".join(lines).encode("latin-1")
        for attempt in (0, 1):
            with self._lock:
                conn = self._idle.pop() if self._idle else None
            reused = conn is not None
            if conn is None:
                conn = self._connect()
            try:
                conn.sock.sendall(payload)
                response, reusable = conn.read_response(method, max_body)
            except (OSError, ValueError) as exc:
                conn.close()
                # A pooled connection the server closed meanwhile: retry once on a fresh one (idempotent requests).
                if reused and attempt == 0 and not isinstance(exc, BodyTooLarge):
                    continue
                if isinstance(exc, OSError):
                    raise
                raise WireError(str(exc)) from exc
            if reusable and not conn.buf:
                with self._lock:
                    if len(self._idle) < self.maxsize:
                        self._idle.append(conn)
                        conn = None
            if conn is not None:
                conn.close()
            return response
        raise WireError("unreachable")  # pragma: no cover - the loop returns or raises
