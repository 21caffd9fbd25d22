"""A lighter transport for the hottest S3 requests: HEAD, ListObjectsV2, GETs of small listed objects and
small unconditional PUTs.

botocore spends ~0.7 ms of CPU per HEAD, more per PUT, and ~60 µs per listed key (its XML parser and
dateutil); on a 2-core worker that, not the network, bounds detailed stats, metadata listings and
migrations of small objects. Here the request is signed with SigV4 (``sigv4.py``, kept byte-for-byte equal
to botocore's signer by its tests) using the credentials the caller hands over
(``session.get_credentials()``: refreshable, so assumed roles keep working), sent over urllib3 (pooling,
proxies, TLS; response headers read by ``lean_response.py`` instead of the stdlib's email parser), and a
LIST page is read with the C ElementTree parser. Each bucket's URL is the one the client itself would use:
captured from the client's own endpoint resolution (region, addressing style, FIPS/dual-stack), never taken
from a presigned URL.

A PUT carries the headers ``put_object`` would send (metadata, content type, payload SHA-256, CRC32 as the
client's checksum setting says) plus ``Content-MD5``. Only unconditional PUTs come here, so boto3 sending
one again after a lost answer writes the same object again; conditional writes (whose second attempt means
something else) stay on boto3.

It behaves as the client's own transport would: the proxy botocore would pick for the URL (``proxies`` in
the client config, else ``HTTP(S)_PROXY`` / ``NO_PROXY``), TLS verified as ``verify`` says (the value the
client was made with), the client's connect and read timeouts. It declines (and the caller asks boto3)
on any answer other than 200/404 and any transport or parse problem, so errors stay typed and retries stay
boto3's; every decline is logged at DEBUG with its reason and counted in ``FastS3.declined``. A bucket whose
fast answers are refused (wrong region, signature, redirect) is left to boto3 from then on; a per-bucket
breaker leaves a stalling or failing endpoint to boto3 for a while; a 5xx waits as the client's retry
mode would before boto3 retries. Switched off by the ``fast_transport`` connection extra or
``DG_FAST_TRANSPORT=0`` (``DG_FAST_HEAD=0``, its old name, still works); off where it could not be
equivalent: no credentials handed over, a client certificate, a proxy TLS configuration
(``proxies_config``), unsigned or SigV2 signing, or a non-http(s) endpoint.
"""

from __future__ import annotations

import base64
import collections
import datetime as _dt
import email.utils
import hashlib
import logging
import os
import random
import ssl
import threading
import time
import urllib.parse
import xml.etree.ElementTree as ElementTree
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import urllib3
from botocore.awsrequest import AWSResponse, HTTPHeaders
from botocore.httpsession import ProxyConfiguration
from botocore.utils import get_environ_proxies

from deltaglider_core.support.env import env_flag
from deltaglider_core.support.limits import byte_count
from deltaglider_core.transport.lean_response import lean
from deltaglider_core.transport.sigv4 import Credentials, SigV4Signer, canonical_query, quote_path

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
_REDIRECTED = (301, 307)  # the bucket lives elsewhere (another region): left to boto3, which follows
_REFUSED = (400, 403)  # this request wants what the fast path does not do (or is refused anyway): boto3 answers
BREAKER_FAILURES = 3  # consecutive transport failures (resets, stalls, 5xx) that open a bucket's breaker
BREAKER_COOL_DOWN_S = 300.0  # how long the bucket is then left to boto3 before the fast path is tried again
USER_AGENT = "deltaglider-core fast-transport (urllib3)"  # names these requests in server and proxy logs
FIRST_RETRY_DELAY_S = 1.0  # botocore's standard retry mode: the first retry waits up to 1 s (full jitter)
log = logging.getLogger(__name__)


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
        *,
        verify: bool | str | None = None,
        proxies: dict[str, str] | None = None,
        connect_timeout: float = 60.0,
        read_timeout: float = 60.0,
        size: int = 32,
    ) -> None:
        self.client = client
        self.signer = signer
        self.verify = verify
        self.proxies = ProxyConfiguration(proxies=proxies or {})  # botocore's own choice of proxy per URL
        self.timeout = urllib3.Timeout(connect=connect_timeout, read=read_timeout)
        self.size = size
        self._layouts: dict[str, _Layout | None] = {}
        self._managers: dict[str, urllib3.PoolManager] = {}  # proxy URL ("" for none) -> its pools
        # "scheme://netloc" -> its route: the proxy's manager, or (no proxy) the host's connection pool
        self._routes: dict[str, tuple[urllib3.PoolManager, Any | None]] = {}
        self._lock = threading.Lock()
        self.answered = 0  # requests answered here, not by boto3 (for tests and diagnostics)
        self.declined: collections.Counter[str] = collections.Counter()  # reason -> requests left to boto3
        self._failures: dict[str, int] = {}  # bucket -> consecutive transport failures
        self._open_until: dict[str, float] = {}  # bucket -> monotonic time its breaker closes again
        self.sleep = time.sleep  # replaceable in tests
        # boto3 adds a CRC32 to PutObject unless the client says "when_required" (then only Content-MD5 here)
        checksums = getattr(client.meta.config, "request_checksum_calculation", None)
        self._crc32 = checksums != "when_required"

    def _layout(self, bucket: str) -> _Layout | None:
        with self._lock:
            until = self._open_until.get(bucket)
        if until is not None:
            if time.monotonic() < until:
                self._decline(bucket, "breaker open")  # boto3 answers for this bucket until it cools down
                return None
            with self._lock:
                self._open_until.pop(bucket, None)
                self._failures.pop(bucket, None)
        if bucket in self._layouts:
            known = self._layouts[bucket]
            if known is None:
                self._decline(bucket, "bucket left to boto3")
            return known
        layout = None
        try:
            url = self._request_url(bucket)
            parts = urllib.parse.urlsplit(url)
            if parts.path.endswith("/" + _PROBE_KEY) and parts.scheme in ("http", "https") and parts.hostname:
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
            managers, self._managers, self._routes = list(self._managers.values()), {}, {}
        for manager in managers:
            manager.clear()

    def _manager(self, url: str) -> urllib3.PoolManager:
        """The connection pools for ``url``: direct, or through the proxy botocore would use for it."""
        proxy = self.proxies.proxy_url_for(url) or ""
        manager = self._managers.get(proxy)
        if manager is None:
            with self._lock:
                manager = self._managers.get(proxy)
                if manager is None:
                    manager = _new_manager(self.proxies, proxy, self.verify, self.timeout, self.size)
                    self._managers[proxy] = manager
        return manager

    def _route(self, layout: _Layout) -> tuple[str, urllib3.PoolManager, Any | None]:
        """(origin, manager, direct pool or None when a proxy applies), decided once per origin."""
        origin = f"{layout.scheme}://{layout.netloc}"
        route = self._routes.get(origin)
        if route is None:
            manager = self._manager(origin + "/")
            pool = None
            if not isinstance(manager, urllib3.ProxyManager):
                pool = manager.connection_from_host(layout.host, layout.port, layout.scheme)
            route = (manager, pool)
            with self._lock:
                self._routes[origin] = route
        return (origin, *route)

    def _open(
        self, layout: _Layout, method: str, target: str, headers: dict[str, str], body: bytes | None, preload: bool
    ) -> Any:
        """Send the request: straight through the host's connection pool, or through the proxy's manager (which
        needs the absolute URL)."""
        origin, manager, pool = self._route(layout)
        if pool is None:
            return manager.urlopen(
                method, origin + target, body=body, headers=headers, retries=False, redirect=False,
                preload_content=preload, decode_content=False,
            )  # fmt: skip
        return pool.urlopen(
            method, target, body=body, headers=headers, retries=False, redirect=False, assert_same_host=False,
            preload_content=preload, decode_content=False,
        )  # fmt: skip

    def _send(
        self,
        bucket: str,
        layout: _Layout,
        method: str,
        path: str,
        query: str,
        max_body: int | None = None,
        upload: Upload | None = None,
    ) -> _Answer | None:
        try:
            if upload is None:
                headers = self.signer.headers(method, layout.netloc, path, query)
            else:
                headers = self.signer.headers(
                    method, layout.netloc, path, query, extra=upload.headers, payload_sha256=upload.sha256
                )
            headers["Host"] = headers.pop("host")  # the spelling urllib3's proxy manager replaces, not repeats
            headers["user-agent"] = USER_AGENT  # not signed
            target = f"{path}?{query}" if query else path
            body = None if upload is None else upload.body
            response = self._open(layout, method, target, headers, body, preload=max_body is None)
            answer = _read(response, method, max_body)
        except _TooLarge as exc:
            self._decline(bucket, str(exc))
            return None
        except Exception as exc:  # noqa: BLE001 - any transport or signing problem: let boto3 (with its retries) answer
            self._decline(bucket, f"{method} failed: {type(exc).__name__}")
            self._failed(bucket)
            return None
        if answer.status in _REDIRECTED:
            self._decline(bucket, f"{method} answered {answer.status}: bucket left to boto3 from now on")
            self._refuse(bucket)
        elif answer.status in _REFUSED:
            # One key can be refused (a policy on its prefix, a name the server will not take) while the others
            # are fine: this request goes to boto3, and only refusals in a row open the bucket's breaker.
            self._decline(bucket, f"{method} answered {answer.status}")
            self._failed(bucket)
        elif answer.status >= 500:
            # The server asked for less (503 SlowDown) or failed: boto3's request is a retry, so it waits as
            # the client's standard retry mode would before its first retry, never re-sending at once.
            self._decline(bucket, f"{method} answered {answer.status}")
            self._failed(bucket)
            self.sleep(random.uniform(0, FIRST_RETRY_DELAY_S))
        elif answer.status not in (200, 404):
            self._decline(bucket, f"{method} answered {answer.status}")
        else:
            with self._lock:
                self._failures.pop(bucket, None)
        return answer

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
        if fields is None:
            self._decline(bucket, "HEAD answer's headers do not parse")
            return False, None
        self.answered += 1
        return True, fields

    def get(self, bucket: str, key: str, max_size: int) -> tuple[dict[str, Any], bytes] | None:
        """A small object's (fields, body), or None to ask boto3 instead (also when it is over ``max_size``)."""
        layout = self._layout(bucket)
        if layout is None:
            return None
        response = self._send(bucket, layout, "GET", layout.base + quote_path(key), "", max_body=max_size)
        if response is None or response.status != 200:
            return None
        fields = _object_fields(response.headers) if "content-length" in response.headers else None
        if fields is None or fields["size"] != len(response.body):
            self._decline(bucket, "GET answer without a matching Content-Length")
            return None
        self.answered += 1
        return fields, response.body

    def put(self, bucket: str, key: str, body: bytes, metadata: Mapping[str, str], content_type: str) -> str | None:
        """PUT a small body unconditionally, with the headers boto3's ``put_object`` would send for it; the new
        object's ETag ("" when the server sent none), or None to ask boto3 instead. Only unconditional writes
        come here: if the answer is lost after the server stored the object, boto3 writing the same bytes and
        headers again is harmless."""
        layout = self._layout(bucket)
        if layout is None:
            return None  # boto3's bucket (or its breaker is open): nothing hashed for nothing
        upload = _upload(body, metadata, content_type, crc32=self._crc32)
        if upload is None:
            self._decline(bucket, "PUT metadata boto3 would send otherwise (or refuse)")
            return None
        response = self._send(bucket, layout, "PUT", layout.base + quote_path(key), "", upload=upload)
        if response is None or response.status != 200:
            if response is not None and response.status == 404:
                self._decline(bucket, "PUT answered 404")  # no such bucket: boto3's typed error says so
            return None
        self.answered += 1
        return response.headers.get("etag", "").strip('"')

    def list_page(self, params: dict[str, Any]) -> dict[str, Any] | None:
        """One ListObjectsV2 page shaped as boto3 returns it (keys decoded), or None to ask boto3 instead."""
        bucket = params.get("Bucket")
        if not isinstance(bucket, str) or any(k != "Bucket" and k not in _LIST_PARAMS for k in params):
            self._decline(str(bucket), f"LIST parameters {sorted(params)} are not all supported")
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
        except Exception as exc:  # noqa: BLE001 - unexpected XML: let boto3 answer
            self._decline(bucket, f"LIST page does not parse ({type(exc).__name__})")
            return None
        self.answered += 1
        return page


def _upload(body: bytes, metadata: Mapping[str, str], content_type: str, *, crc32: bool) -> Upload | None:
    """The PUT's headers: what ``put_object(Body, Metadata, ContentType)`` sends, plus ``Content-MD5`` (the
    server checks the bytes it stored). None when a header would not go on the wire as given: non-ASCII or
    control characters (botocore refuses those), or spacing that signing would canonicalise."""
    headers = {"content-type": content_type}
    for name, value in metadata.items():
        headers[f"x-amz-meta-{name}"] = value
    for name, value in headers.items():
        if not (name.isascii() and value.isascii() and value.isprintable() and name.isprintable()):
            return None
        if name != name.lower() or " ".join(value.split()) != value or ":" in name or " " in name:
            return None
    headers["content-md5"] = base64.b64encode(hashlib.md5(body).digest()).decode()
    if crc32:  # botocore's default (request_checksum_calculation="when_supported"): S3 keeps it with the object
        headers["x-amz-checksum-crc32"] = base64.b64encode(zlib.crc32(body).to_bytes(4, "big")).decode()
        headers["x-amz-sdk-checksum-algorithm"] = "CRC32"
    return Upload(body, headers, hashlib.sha256(body).hexdigest())


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


@dataclass(frozen=True)
class Upload:
    """A PUT's body with its signed headers (``content-md5``, ``content-type``, ``x-amz-meta-*``, checksums) and
    the body's SHA-256 (hex), which the signature covers."""

    body: bytes
    headers: dict[str, str]
    sha256: str


@dataclass(frozen=True)
class _Answer:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes


class _TooLarge(Exception):
    """The body is over what the caller accepts: boto3 reads it instead (not a transport failure)."""


def _read(response: Any, method: str, max_body: int | None) -> _Answer:
    """The whole answer; the connection goes back to its pool, or is closed when the body is refused."""
    headers: dict[str, str] = {}
    for name, value in response.headers.items():
        name = name.lower()
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    if method == "HEAD":
        body = b""
    elif max_body is None:
        return _Answer(response.status, headers, response.data)  # read whole (preloaded), connection released
    else:
        length = byte_count(headers.get("content-length"))
        if length is not None and length <= max_body:
            body = response.read()  # framed by Content-Length, within the limit
        else:  # too large, or no length given: read no more than the limit allows
            body = response.read(max_body + 1)
            if len(body) > max_body:
                response.close()  # the rest is not read: this connection cannot be reused
                response.release_conn()
                raise _TooLarge(f"{method} body over {max_body} bytes")
            body += response.read()  # nothing is left; this completes the framing so the connection is reusable
    response.release_conn()
    return _Answer(response.status, headers, body)


def _tls_context(verify: bool | str | None) -> ssl.SSLContext:
    """TLS as botocore sets it up for ``verify``: False skips verification, a path is a CA bundle (or a
    directory of them), otherwise ``AWS_CA_BUNDLE`` or the certifi bundle botocore uses."""
    if verify is False:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    where = verify if isinstance(verify, str) else os.environ.get("AWS_CA_BUNDLE") or None
    if where is None:
        try:
            import certifi  # botocore's default trust store

            where = certifi.where()
        except ImportError:
            where = None
    if where is not None and os.path.isdir(where):
        return ssl.create_default_context(capath=where)
    return ssl.create_default_context(cafile=where)


def _new_manager(
    proxies: ProxyConfiguration, proxy: str, verify: bool | str | None, timeout: urllib3.Timeout, size: int
) -> urllib3.PoolManager:
    options: dict[str, Any] = {
        "num_pools": 16,
        "maxsize": size,
        "timeout": timeout,
        "retries": False,
        "ssl_context": _tls_context(verify),
    }
    if verify is False:
        options["cert_reqs"] = "CERT_NONE"
    if not proxy:
        return lean(urllib3.PoolManager(**options))
    return lean(urllib3.ProxyManager(proxy, proxy_headers=proxies.proxy_headers_for(proxy), **options))


def switched_off() -> bool:
    """``DG_FAST_TRANSPORT=0`` (or ``false``/``no``/``off``; its old name ``DG_FAST_HEAD`` too) turns the fast
    transport off everywhere."""
    return not (env_flag("DG_FAST_TRANSPORT", True) and env_flag("DG_FAST_HEAD", True))


def _not_equivalent(client: Any, enabled: bool, credentials: Any) -> str | None:
    """Why the fast transport would not behave as the client's own, or None."""
    if not enabled or switched_off():
        return "switched off (fast_transport extra or DG_FAST_TRANSPORT=0)"
    if credentials is None or not hasattr(credentials, "get_frozen_credentials"):
        return "no credentials were handed over (pass credentials=session.get_credentials())"
    config = client.meta.config
    if getattr(config, "client_cert", None):
        return "a client certificate is configured"
    if getattr(config, "proxies_config", None):
        return "a proxy TLS configuration (proxies_config) is set"
    if getattr(config, "signature_version", None) not in (None, "s3v4", "v4"):
        return f"signature_version={config.signature_version!r} (unsigned or SigV2 on purpose)"
    endpoint = getattr(client.meta, "endpoint_url", "") or ""
    if not endpoint.startswith(("http://", "https://")):
        return f"endpoint {endpoint!r} is not http(s)"
    return None


def make_fast(
    client: Any, credentials: Any = None, *, verify: bool | str | None = None, size: int = 32, enabled: bool = True
) -> FastS3 | None:
    """A FastS3 equivalent to the client's own transport, or None (the reason logged at DEBUG) when it would
    not be equivalent or is switched off (``enabled=False``: the ``fast_transport`` connection extra).

    ``credentials`` are the client's own, from the public API (``session.get_credentials()``); ``verify`` is the
    value the client was made with."""
    reason = _not_equivalent(client, enabled, credentials)
    if reason is not None:
        log.debug("fast transport off: %s; every request goes through boto3", reason)
        return None
    config = client.meta.config

    def read() -> Credentials:
        frozen = credentials.get_frozen_credentials()
        return Credentials(frozen.access_key, frozen.secret_key, frozen.token)

    endpoint = str(client.meta.endpoint_url)
    proxies = dict(getattr(config, "proxies", None) or get_environ_proxies(endpoint))
    return FastS3(
        client,
        SigV4Signer(read, client.meta.region_name or "us-east-1"),
        verify=verify,
        proxies=proxies,
        connect_timeout=float(config.connect_timeout),
        read_timeout=float(config.read_timeout),
        size=size,
    )
