"""The minimal HTTP/1.1 client against a scripted loopback server: every framing, reuse, and failure."""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from deltaglider_core.wire import BodyTooLarge, WireError, WirePool

from tests.tls import self_signed, tls_server

Handler = Callable[[socket.socket, bytes], bool]  # (conn, request head) -> keep the connection open?


class Scripted:
    """Answers each request on a loopback socket with the next scripted handler."""

    def __init__(self, handlers: list[Handler]) -> None:
        self.handlers = handlers
        self.requests: list[bytes] = []
        self.connections = 0
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while self.handlers:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            with conn:
                buf = b""
                while self.handlers:
                    while b"\r\n\r\n" not in buf:
                        chunk = conn.recv(65536)
                        if not chunk:
                            break
                        buf += chunk
                    if b"\r\n\r\n" not in buf:
                        break
                    head, _, buf = buf.partition(b"\r\n\r\n")
                    self.requests.append(head)
                    if not self.handlers.pop(0)(conn, head):
                        break

    def close(self) -> None:
        self.sock.close()


def reply(raw: bytes, keep: bool = True) -> Handler:
    def handler(conn: socket.socket, head: bytes) -> bool:
        conn.sendall(raw)
        return keep

    return handler


Serve = Callable[[list[Handler]], tuple[Scripted, WirePool]]


@pytest.fixture
def serve() -> Iterator[Serve]:
    servers: list[Scripted] = []

    def start(handlers: list[Handler]) -> tuple[Scripted, WirePool]:
        server = Scripted(handlers)
        servers.append(server)
        return server, WirePool("127.0.0.1", server.port, connect_timeout=5, read_timeout=5)

    yield start
    for server in servers:
        server.close()


def test_content_length_and_keep_alive(serve: Serve) -> None:
    ok = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Amz-Meta-A: 1\r\nx-amz-meta-a: 2\r\n\r\nhello"
    server, pool = serve([reply(ok), reply(ok)])
    first = pool.request("GET", "/b?x=1", {"host": "h", "x-amz-date": "d"})
    second = pool.request("GET", "/b/k", {"host": "h"})
    assert (first.status, first.body, first.headers["x-amz-meta-a"]) == (200, b"hello", "1, 2")
    assert second.body == b"hello"
    assert server.connections == 1  # the second request reused the connection
    assert server.requests[0] == b"GET /b?x=1 HTTP/1.1\r\nhost: h\r\nx-amz-date: d"


def test_chunked_body_with_extensions_and_trailers(serve: Serve) -> None:
    body = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"4;ext=1\r\nWiki\r\n6\r\npedia \r\nE\r\nin \r\n\r\nchunks.\r\n0\r\nX-T: 1\r\n\r\n"
    )
    _, pool = serve([reply(body)])
    assert pool.request("GET", "/", {}).body == b"Wikipedia in \r\n\r\nchunks."


def test_head_has_no_body_even_with_content_length(serve: Serve) -> None:
    head = b'HTTP/1.1 200 OK\r\nContent-Length: 1234\r\nETag: "abc"\r\n\r\n'
    server, pool = serve([reply(head), reply(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")])
    assert pool.request("HEAD", "/b/k", {}).headers == {"content-length": "1234", "etag": '"abc"'}
    assert pool.request("HEAD", "/b/missing", {}).status == 404
    assert server.connections == 1


def test_interim_100_then_body_until_close(serve: Serve) -> None:
    raw = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nConnection: close\r\n\r\nall of it"
    server, pool = serve([reply(raw, keep=False), reply(b"HTTP/1.1 204 No Content\r\n\r\n")])
    assert pool.request("GET", "/", {}).body == b"all of it"
    assert pool.request("GET", "/", {}).status == 204
    assert server.connections == 2  # "Connection: close" was honoured


def test_stale_pooled_connection_is_retried_once(serve: Serve) -> None:
    ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    # The server answers, then drops the connection without saying so (idle keep-alive timeout).
    server, pool = serve([reply(ok, keep=False), reply(ok)])
    assert pool.request("GET", "/", {}).body == b"ok"
    assert pool.request("GET", "/", {}).body == b"ok"
    assert server.connections == 2


@pytest.mark.parametrize(
    "raw",
    [
        b"SSH-2.0-OpenSSH\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: ten\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nbroken header\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
    ],
)
def test_malformed_or_truncated_responses_raise(serve: Serve, raw: bytes) -> None:
    _, pool = serve([reply(raw, keep=False)])
    with pytest.raises(WireError):
        pool.request("GET", "/", {})


def test_refused_connection_raises_oserror() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    with pytest.raises(OSError):
        WirePool("127.0.0.1", port, connect_timeout=2, read_timeout=2).request("HEAD", "/", {})


def test_tls_verifies_the_server_certificate(tmp_path: Path) -> None:
    cert_file, key_file = self_signed(tmp_path)
    port = tls_server(cert_file, key_file, answers=2)
    trusted = WirePool("localhost", port, tls=ssl.create_default_context(cafile=str(cert_file)), read_timeout=5)
    assert trusted.request("GET", "/b/k", {"host": f"localhost:{port}"}).body == b"secret"
    untrusted = WirePool("localhost", port, tls=ssl.create_default_context(), read_timeout=5)
    with pytest.raises(ssl.SSLCertVerificationError):
        untrusted.request("GET", "/b/k", {"host": f"localhost:{port}"})


def test_body_over_the_limit_is_refused_without_retry(serve: Serve) -> None:
    ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    big = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + b"x" * 100
    chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n8\r\n12345678\r\n8\r\n12345678\r\n0\r\n\r\n"
    server, pool = serve([reply(ok), reply(big), reply(chunked), reply(ok)])
    assert pool.request("GET", "/", {}, max_body=10).body == b"ok"
    with pytest.raises(BodyTooLarge):
        pool.request("GET", "/", {}, max_body=10)  # on the reused connection: not retried
    assert server.connections == 1
    with pytest.raises(BodyTooLarge):
        pool.request("GET", "/", {}, max_body=10)
    assert pool.request("GET", "/", {}, max_body=10).body == b"ok"
    assert server.connections == 3  # each refusal dropped its connection


@pytest.mark.parametrize("size", [10, 11, 70_000])
def test_body_until_close_respects_the_limit(serve: Serve, size: int) -> None:
    def head_then_body(conn: socket.socket, head: bytes) -> bool:
        conn.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
        time.sleep(0.05)  # the body arrives in a later read than the headers
        conn.sendall(b"y" * size)
        return False

    _, pool = serve([head_then_body])
    if size <= 10:
        assert pool.request("GET", "/", {}, max_body=10).body == b"y" * size
    else:
        with pytest.raises(BodyTooLarge):
            pool.request("GET", "/", {}, max_body=10)
