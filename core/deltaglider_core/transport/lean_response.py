"""urllib3 connections whose response headers are read without the stdlib's email parser.

``http.client`` parses every response's header block with ``email.parser`` (~25 µs of CPU per header line);
a HEAD of an object with DeltaGlider's nine ``x-amz-meta-dg-*`` headers spends more there than in the rest of
the request, and detailed stats send thousands. Everything else (pooling, proxies and CONNECT tunnels, TLS,
timeouts, chunked and length-framed bodies) stays urllib3's and ``http.client``'s: only ``begin()``, which
reads the status line and the header block, is ours. No library offers this; it is ~50 lines, and the
fast transport's tests run every request through it.
"""

from __future__ import annotations

import http.client
from typing import TypeVar

import urllib3
from urllib3.connection import HTTPConnection, HTTPSConnection

from deltaglider_core.support.limits import byte_count

MAX_LINE = 65536
MAX_HEADERS = 100


class LeanResponse(http.client.HTTPResponse):
    """An ``http.client`` response that fills its ``HTTPMessage`` headers with a plain split per line."""

    def begin(self) -> None:
        if self.headers is not None:
            return  # already read
        while True:
            version, status, reason = self._status_line()
            headers = self._header_lines()
            if not 100 <= status < 200:
                break  # 1xx (e.g. 100 Continue) is followed by the real answer
        self.code = self.status = status
        self.reason = reason
        if version.startswith("HTTP/1.") and version != "HTTP/1.0":
            self.version = 11
        elif version in ("HTTP/1.0", "HTTP/0.9"):
            self.version = 10
        else:
            raise http.client.UnknownProtocol(version)
        message = http.client.HTTPMessage()
        for name, value in headers:
            message[name] = value
        self.headers = self.msg = message
        self.chunked = (message.get("transfer-encoding") or "").lower() == "chunked"
        self.chunk_left = None
        connection = (message.get("connection") or "").lower()
        if self.version == 11:
            self.will_close = "close" in connection
        else:
            self.will_close = "keep-alive" not in connection and not message.get("keep-alive")
        length = message.get("content-length")
        self.length = None
        if length is not None and not self.chunked:
            self.length = byte_count(length.strip())
        if status in (204, 304) or self._method == "HEAD":
            self.length = 0
        if not self.will_close and not self.chunked and self.length is None:
            self.will_close = True  # the body runs to the end of the connection

    def _status_line(self) -> tuple[str, int, str]:
        line = self.fp.readline(MAX_LINE + 1)
        if not line:
            raise http.client.RemoteDisconnected("Remote end closed connection without response")
        if len(line) > MAX_LINE:
            raise http.client.LineTooLong("status line")
        parts = line.decode("iso-8859-1").rstrip("\r\n").split(None, 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/") or byte_count(parts[1]) is None or len(parts[1]) != 3:
            raise http.client.BadStatusLine(line.decode("iso-8859-1"))
        return parts[0], int(parts[1]), parts[2].strip() if len(parts) > 2 else ""

    def _header_lines(self) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        while True:
            line = self.fp.readline(MAX_LINE + 1)
            if len(line) > MAX_LINE:
                raise http.client.LineTooLong("header line")
            if line in (b"\r\n", b"\n", b""):
                return out
            if len(out) >= MAX_HEADERS:
                raise http.client.HTTPException(f"got more than {MAX_HEADERS} headers")
            text = line.decode("iso-8859-1")
            if text[0] in " \t" and out:  # an obsolete folded continuation line
                name, value = out[-1]
                out[-1] = (name, f"{value} {text.strip()}")
                continue
            name, sep, value = text.partition(":")
            if not sep:
                raise http.client.HTTPException(f"malformed header line {text[:80]!r}")
            out.append((name.strip(), value.strip()))


class _LeanHTTPConnection(HTTPConnection):
    response_class = LeanResponse


class _LeanHTTPSConnection(HTTPSConnection):
    response_class = LeanResponse


class _LeanHTTPPool(urllib3.HTTPConnectionPool):
    ConnectionCls = _LeanHTTPConnection


class _LeanHTTPSPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = _LeanHTTPSConnection


Manager = TypeVar("Manager", bound=urllib3.PoolManager)


def lean(manager: Manager) -> Manager:
    """``manager`` (a PoolManager or ProxyManager) with its pools using :class:`LeanResponse`."""
    manager.pool_classes_by_scheme = {"http": _LeanHTTPPool, "https": _LeanHTTPSPool}
    return manager
