"""A lighter transport for the hottest S3 reads: HEAD, ListObjectsV2 and GETs of small listed objects.

botocore spends ~0.7 ms of CPU per HEAD and ~60 µs per listed key (its XML parser and dateutil); on a
2-core worker that, not the network, bounds detailed stats, metadata listings and migrations. Here the
request is signed with SigV4 using the boto3 client's own (refreshable) credentials and region, sent
over a minimal keep-alive HTTP client, and a LIST page is read with the C ElementTree parser. The URL
layout (endpoint, addressing style) is learned once per bucket from a URL presigned by the same client,
so botocore's endpoint rules still decide where requests go.

Used only where equivalent: an http(s) endpoint, no proxy, no client certificate, standard TLS
verification, SigV4 (or the default) signing, and ``DG_FAST_HEAD`` not ``0`` (the tests turn it off
under moto, which cannot answer raw HTTP). The caller falls back to the boto3 call whenever this
declines (any answer other than 200/404, any transport or parse problem), so errors stay typed and
retries stay boto3's; a bucket whose fast answers are refused (wrong region, signature, redirect) is
left to boto3 from then on.
"""

from __future__ import annotations

import collections
import datetime as _dt
import email.utils
import logging
import os
import random
import ssl
import threading
import time
import urllib.parse
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.awsrequest import AWSResponse, HTTPHeaders

from .sigv4 import Credentials, SigV4Signer, canonical_query, quote_path
from .wire import WirePool

_PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")
_NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"
_CONTENTS, _PREFIXES = _NS + "Contents", _NS + "CommonPrefixes"
_KEY, _SIZE, _MODIFIED, _ETAG, _PREFIX = (_NS + t for t in ("Key", "Size", "LastModified", "ETag", "Prefix"))
_LIST_PARAMS = {
    "Prefix": "prefix",
    "Delimiter": "delimiter",
    "StartAfter": "start-after",
    "ContinuationToken": "continuation-token",
    "MaxKeys": "max-keys",
}
_PROBE_KEY = "deltaglider-layout-probe"  # a HeadObject of this key is answered locally: see _request_url
_REFUSED = (301, 307, 400, 403)  # this bucket wants something the fast path does not do: leave it to boto3
BREAKER_FAILURES = 3  # consecutive transport failures (resets, stalls, 5xx) that open a bucket's breaker
BREAKER_COOL_DOWN_S = 300.0  # how long the bucket is then left to boto3 before the fast path is tried again
FIRST_RETRY_DELAY_S = 1.0  # botocore's standard retry mode: the first retry waits up to 1 s (full jitter)
log = logging.getLogger("deltaglider_core.fast_http")


class _EmptyBody:
    """The raw body of the locally answered layout probe: nothing."""

    def stream(self, **_: Any) -> Any:
        return iter(())


@dataclass(frozen=True)
class _Layout:
    scheme: str
    host: str
    port: int
    netloc: str
    base: str  # path prefix of the bucket's keys, ending with "/"


class FastS3:
    """HEAD, GET of a small object and one ListObjectsV2 page, answered like boto3 or declined (then the caller
    asks boto3)."""

    def __init__(
        self,
        client: Any,
        signer: SigV4Signer,
        tls: Callable[[], ssl.SSLContext] | None,
        connect_timeout: float,
        read_timeout: float,
        size: int = 32,
    ) -> None:
        self.client = client
        self.signer = signer
        self._tls_factory = tls
        self._tls: ssl.SSLContext | None = None
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.size = size
        self._layouts: dict[str, _Layout | None] = {}
        self._pools: dict[tuple[str, int, bool], WirePool] = {}
        self._lock = threading.Lock()
        self.answered = 0  # requests answered here, not by boto3 (for tests and diagnostics)
        self.declined: collections.Counter[str] = collections.Counter()  # reason -> requests left to boto3
        self._failures: dict[str, int] = {}  # bucket -> consecutive transport failures
        self._open_until: dict[str, float] = {}  # bucket -> monotonic time its breaker closes again
        self.sleep = time.sleep  # replaceable in tests

    def _layout(self, bucket: str) -> _Layout | None:
        with self._lock:
            until = self._open_until.get(bucket)
        if until is not None:
            if time.monotonic() < until:
                return None  # the breaker is open: boto3 answers for this bucket until it cools down
            with self._lock:
                self._open_until.pop(bucket, None)
                self._failures.pop(bucket, None)
        if bucket in self._layouts:
            return self._layouts[bucket]
        layout = None
        try:
            url = self._request_url(bucket)
            parts = urllib.parse.urlsplit(url)
            usable = parts.scheme == "http" or (parts.scheme == "https" and self._tls_factory is not None)
            if parts.path.endswith("/" + _PROBE_KEY) and usable and parts.hostname:
                port = parts.port or (443 if parts.scheme == "https" else 80)
                layout = _Layout(parts.scheme, parts.hostname, port, parts.netloc, parts.path[: -len(_PROBE_KEY)])
        except Exception as exc:  # noqa: BLE001 - cannot tell where this bucket lives: boto3 will
            self._decline(bucket, f"no URL layout ({type(exc).__name__}: {exc})")
            layout = None
        with self._lock:
            self._layouts[bucket] = layout
        return layout

    def _request_url(self, bucket: str) -> str:
        """The URL the client itself would send a HeadObject of this bucket to: built by the client's own
        endpoint resolution (region, addressing style, FIPS/dual-stack), captured just before sending and
        answered locally, so nothing leaves the process. (A presigned URL can name another host: botocore
        presigns eu-west-3, us-west-2 and ap-southeast-2 buckets against the global endpoint.)"""
        seen: list[str] = []

        def capture(request: Any, **_: Any) -> Any:
            if not request.url.split("?")[0].endswith("/" + _PROBE_KEY):
                return None  # someone else's request on this shared client: let it go
            seen.append(request.url)
            return AWSResponse(request.url, 200, HTTPHeaders(), _EmptyBody())

        events = self.client.meta.events
        events.register_first("before-send.s3.HeadObject", capture, unique_id=f"dg-layout-{id(self)}")
        try:
            self.client.head_object(Bucket=bucket, Key=_PROBE_KEY)
        finally:
            events.unregister("before-send.s3.HeadObject", unique_id=f"dg-layout-{id(self)}")
        if not seen:
            raise RuntimeError("the client sent no HeadObject to capture")
        return seen[0]

    def _decline(self, bucket: str, reason: str) -> None:
        """Count and log (DEBUG) a request left to boto3, with its reason."""
        with self._lock:
            self.declined[reason] += 1
        log.debug("fast transport: s3://%s left to boto3: %s", bucket, reason)

    def _failed(self, bucket: str) -> None:
        """One more consecutive transport failure; the breaker opens at ``BREAKER_FAILURES``, so a stalling or
        failing endpoint costs at most that many slow requests before boto3 answers alone for a while."""
        with self._lock:
            count = self._failures.get(bucket, 0) + 1
            self._failures[bucket] = count
            if count >= BREAKER_FAILURES:
                self._open_until[bucket] = time.monotonic() + BREAKER_COOL_DOWN_S
        if count >= BREAKER_FAILURES:
            log.debug("fast transport: breaker open for s3://%s after %d failures in a row", bucket, count)

    def _refuse(self, bucket: str) -> None:
        with self._lock:
            self._layouts[bucket] = None

    def close(self) -> None:
        """Close every pooled connection."""
        with self._lock:
            pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            pool.close()

    def _pool(self, layout: _Layout) -> WirePool:
        tls = layout.scheme == "https"
        key = (layout.host, layout.port, tls)
        pool = self._pools.get(key)
        if pool is None:
            with self._lock:
                pool = self._pools.get(key)
                if pool is None:
                    if tls and self._tls is None and self._tls_factory is not None:
                        self._tls = self._tls_factory()
                    pool = WirePool(
                        layout.host,
                        layout.port,
                        tls=self._tls if tls else None,
                        connect_timeout=self.connect_timeout,
                        read_timeout=self.read_timeout,
                        maxsize=self.size,
                    )
                    self._pools[key] = pool
        return pool

    def _send(
        self, bucket: str, layout: _Layout, method: str, path: str, query: str, max_body: int | None = None
    ) -> Any | None:
        try:
            headers = self.signer.headers(method, layout.netloc, path, query)
            target = f"{path}?{query}" if query else path
            response = self._pool(layout).request(method, target, headers, max_body=max_body)
        except Exception as exc:  # noqa: BLE001 - any transport or signing problem: let boto3 (with its retries) answer
            self._decline(bucket, f"{method} failed: {type(exc).__name__}")
            self._failed(bucket)
            return None
        if response.status in _REFUSED:
            self._decline(bucket, f"{method} answered {response.status}: bucket left to boto3 from now on")
            self._refuse(bucket)
        elif response.status >= 500:
            # The server asked for less (503 SlowDown) or failed: boto3's request is a retry, so it waits as
            # the client's standard retry mode would before its first retry, never re-sending at once.
            self._decline(bucket, f"{method} answered {response.status}")
            self._failed(bucket)
            self.sleep(random.uniform(0, FIRST_RETRY_DELAY_S))
        elif response.status not in (200, 404):
            self._decline(bucket, f"{method} answered {response.status}")
        else:
            with self._lock:
                self._failures.pop(bucket, None)
        return response

    def head(self, bucket: str, key: str) -> tuple[bool, dict[str, Any] | None]:
        """(answered, fields): fields None for a missing key; answered False means "ask boto3 instead"."""
        layout = self._layout(bucket)
        if layout is None:
            return False, None
        response = self._send(bucket, layout, "HEAD", layout.base + quote_path(key), "")
        if response is None or response.status not in (200, 404):
            return False, None
        if response.status == 404:
            self.answered += 1
            return True, None
        fields = _object_fields(response.headers)
        if fields is not None:
            self.answered += 1
        return fields is not None, fields

    def get(self, bucket: str, key: str, max_size: int) -> tuple[dict[str, Any], bytes] | None:
        """A small object's (fields, body), or None to ask boto3 instead (also when it is over ``max_size``)."""
        layout = self._layout(bucket)
        if layout is None:
            return None
        response = self._send(bucket, layout, "GET", layout.base + quote_path(key), "", max_body=max_size)
        if response is None or response.status != 200 or "content-length" not in response.headers:
            return None
        fields = _object_fields(response.headers)
        if fields is None or fields["size"] != len(response.body):
            return None
        self.answered += 1
        return fields, response.body

    def list_page(self, params: dict[str, Any]) -> dict[str, Any] | None:
        """One ListObjectsV2 page shaped as boto3 returns it (keys decoded), or None to ask boto3 instead."""
        bucket = params.get("Bucket")
        if not isinstance(bucket, str) or any(k != "Bucket" and k not in _LIST_PARAMS for k in params):
            return None
        layout = self._layout(bucket)
        if layout is None:
            return None
        query = [("list-type", "2"), ("encoding-type", "url")]
        query += [(_LIST_PARAMS[k], str(v)) for k, v in params.items() if k != "Bucket" and v is not None]
        path = layout.base.rstrip("/") or "/"
        response = self._send(bucket, layout, "GET", path, canonical_query(query))
        if response is None or response.status != 200:
            return None
        try:
            page = _parse_list(response.body)
        except Exception:  # noqa: BLE001 - unexpected XML: let boto3 answer
            return None
        self.answered += 1
        return page


def _object_fields(headers: dict[str, str]) -> dict[str, Any] | None:
    """size, metadata, last_modified, etag from a HEAD/GET answer (None when they do not parse)."""
    meta = {k[len("x-amz-meta-") :]: v for k, v in headers.items() if k.startswith("x-amz-meta-")}
    modified = headers.get("last-modified")
    try:
        return {
            "size": int(headers.get("content-length", "0")),
            "metadata": meta,
            "last_modified": email.utils.parsedate_to_datetime(modified) if modified else None,
            "etag": headers.get("etag", "").strip('"') or None,
        }
    except (TypeError, ValueError):
        return None


def _parse_list(body: bytes) -> dict[str, Any]:
    root = ElementTree.fromstring(body)
    unquote = urllib.parse.unquote_plus
    contents: list[dict[str, Any]] = []
    prefixes: list[dict[str, str]] = []
    for item in root:
        if item.tag == _CONTENTS:
            fields = {child.tag: child.text or "" for child in item}
            contents.append(
                {
                    "Key": unquote(fields[_KEY]),
                    "Size": int(fields.get(_SIZE) or 0),
                    "LastModified": _dt.datetime.fromisoformat(fields[_MODIFIED].replace("Z", "+00:00")),
                    "ETag": fields.get(_ETAG, ""),
                }
            )
        elif item.tag == _PREFIXES:
            prefixes.append({"Prefix": unquote(item.findtext(_PREFIX) or "")})
    return {
        "Contents": contents,
        "CommonPrefixes": prefixes,
        "IsTruncated": (root.findtext(_NS + "IsTruncated") or "false") == "true",
        "NextContinuationToken": root.findtext(_NS + "NextContinuationToken"),
    }


def _not_equivalent(client: Any, enabled: bool) -> str | None:
    """Why the fast transport would not behave as the client's own, or None."""
    if not enabled or os.environ.get("DG_FAST_HEAD", "1") == "0":
        return "switched off (fast_transport extra or DG_FAST_HEAD=0)"
    config = client.meta.config
    if any(os.environ.get(v) for v in _PROXY_VARS) or getattr(config, "proxies", None):
        return "a proxy is configured"
    if getattr(config, "client_cert", None):
        return "a client certificate is configured"
    if getattr(config, "signature_version", None) not in (None, "s3v4", "v4"):
        return f"signature_version={config.signature_version!r} (unsigned or SigV2 on purpose)"
    endpoint = getattr(client.meta, "endpoint_url", "") or ""
    if not endpoint.startswith(("http://", "https://")):
        return f"endpoint {endpoint!r} is not http(s)"
    return None


def _credentials(client: Any) -> Callable[[], Credentials] | None:
    try:
        getter = getattr(client, "_get_credentials", None)
        source = getter() if getter is not None else client._request_signer._credentials
    except Exception:  # noqa: BLE001 - a client we do not understand: no fast path
        return None
    if source is None or not hasattr(source, "get_frozen_credentials"):
        return None

    def read() -> Credentials:
        frozen = source.get_frozen_credentials()
        return Credentials(frozen.access_key, frozen.secret_key, frozen.token)

    return read


def _tls_factory(client: Any) -> Callable[[], ssl.SSLContext] | None:
    verify = getattr(getattr(getattr(client, "_endpoint", None), "http_session", None), "_verify", True)
    if verify is False:
        return None
    ca_file = verify if isinstance(verify, str) else os.environ.get("AWS_CA_BUNDLE") or None
    if ca_file is None:
        try:
            import certifi  # botocore's default trust store

            ca_file = certifi.where()
        except ImportError:
            ca_file = None
    return lambda: ssl.create_default_context(cafile=ca_file)


def make_fast(client: Any, size: int = 32, *, enabled: bool = True) -> FastS3 | None:
    """A FastS3 equivalent to the client's own transport, or None (the reason logged at DEBUG) when it would
    not be equivalent or is switched off (``enabled=False``: the ``fast_transport`` connection extra)."""
    reason = _not_equivalent(client, enabled)
    if reason is not None:
        log.debug("fast transport off: %s; every request goes through boto3", reason)
        return None
    config = client.meta.config
    credentials = _credentials(client)
    if credentials is None:
        log.debug("fast transport off: the client's credentials cannot be read; every request goes through boto3")
        return None
    region = client.meta.region_name or "us-east-1"
    return FastS3(
        client,
        SigV4Signer(credentials, region),
        _tls_factory(client),
        connect_timeout=float(config.connect_timeout),
        read_timeout=float(config.read_timeout),
        size=size,
    )
