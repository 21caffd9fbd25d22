"""AWS Signature Version 4 for S3 requests, as headers: HEAD, GET and small PUTs whose payload hash is known.

The algorithm is AWS's documented one (canonical request, string to sign, HMAC-derived key); for S3 the
path is not normalised or double-encoded. The derived key is cached per day and region, so signing a
request costs two SHA-256s and one HMAC.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import hmac
import threading
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

ALGORITHM = "AWS4-HMAC-SHA256"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


@dataclass(frozen=True)
class Credentials:
    access_key: str
    secret_key: str
    token: str | None = None


def quote_path(path: str) -> str:
    """A key or path as it goes on the wire and into the canonical request: every byte but unreserved and '/'."""
    return urllib.parse.quote(path, safe="/")


def canonical_query(params: Sequence[tuple[str, str]]) -> str:
    """Sorted, RFC 3986-encoded query string (also the exact query to send)."""
    encoded = sorted((urllib.parse.quote(k, safe="~"), urllib.parse.quote(v, safe="~")) for k, v in params)
    return "&".join(f"{k}={v}" for k, v in encoded)


class SigV4Signer:
    """Signs S3 requests for one region with credentials read (and refreshed) through ``credentials``."""

    def __init__(self, credentials: Callable[[], Credentials], region: str, service: str = "s3") -> None:
        self._credentials = credentials
        self.region = region
        self.service = service
        self._keys: dict[tuple[str, str], bytes] = {}
        self._lock = threading.Lock()

    def _signing_key(self, secret: str, day: str) -> bytes:
        cache_key = (secret, day)
        key = self._keys.get(cache_key)
        if key is None:
            key = ("AWS4" + secret).encode()
            for part in (day, self.region, self.service, "aws4_request"):
                key = hmac.new(key, part.encode(), hashlib.sha256).digest()
            with self._lock:
                if len(self._keys) > 8:
                    self._keys.clear()
                self._keys[cache_key] = key
        return key

    def headers(
        self,
        method: str,
        host: str,
        path: str,
        query: str,
        *,
        extra: Mapping[str, str] | None = None,
        payload_sha256: str = EMPTY_SHA256,
        now: _dt.datetime | None = None,
    ) -> dict[str, str]:
        """The headers that authenticate ``method host path?query`` (path already quoted, query canonical).

        ``extra`` headers (e.g. ``content-md5``, ``x-amz-meta-*``) are sent and signed with it; their values are
        signed as AWS canonicalises them (trimmed, runs of spaces as one), so callers send them in that form.
        ``payload_sha256`` is the body's SHA-256 (hex), the empty body's by default."""
        creds = self._credentials()
        stamp = (now or _dt.datetime.now(_dt.timezone.utc)).strftime("%Y%m%dT%H%M%SZ")
        day = stamp[:8]
        headers = {k.lower(): " ".join(v.split()) for k, v in (extra or {}).items()}
        headers.update({"host": host, "x-amz-content-sha256": payload_sha256, "x-amz-date": stamp})
        if creds.token:
            headers["x-amz-security-token"] = creds.token
        names = sorted(headers)
        signed = ";".join(names)
        canonical = "\n".join(
            [method, path, query, *(f"{n}:{headers[n].strip()}" for n in names), "", signed, payload_sha256]
        )
        scope = f"{day}/{self.region}/{self.service}/aws4_request"
        to_sign = f"{ALGORITHM}\n{stamp}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
        signature = hmac.new(self._signing_key(creds.secret_key, day), to_sign.encode(), hashlib.sha256).hexdigest()
        headers["authorization"] = (
            f"{ALGORITHM} Credential={creds.access_key}/{scope}, SignedHeaders={signed}, Signature={signature}"
        )
        return headers
