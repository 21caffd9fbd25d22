"""A lighter transport for the two hottest S3 calls: HEAD and ListObjectsV2.

botocore's per-request pipeline costs ~1.4 ms of CPU per call, and its XML parser ~50 µs per listed key;
on a 2-core worker that, not the network, bounds detailed stats, metadata listings and migrations. Here a
request is presigned by the same boto3 client (same credentials, endpoint and addressing style), sent over
a plain urllib3 pool, and a LIST page is parsed with the C ElementTree parser.

Used only where equivalent: an http(s) endpoint, no proxy configured, standard TLS verification, and
``DG_FAST_HEAD`` not ``0`` (the tests turn it off under moto, which cannot answer raw HTTP). The caller
falls back to the boto3 call when this declines (any answer other than 200/404, any transport or parse
problem), so errors stay typed and retries stay boto3's.
"""

from __future__ import annotations

import datetime as _dt
import email.utils
import os
import urllib.parse
import xml.etree.ElementTree as ElementTree
from typing import Any

_PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")
_NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"


def make_pool(client: Any, size: int = 32) -> Any | None:
    """A urllib3 pool equivalent to the client's transport, or None when it would not be equivalent."""
    try:
        import urllib3
    except ImportError:
        return None
    if os.environ.get("DG_FAST_HEAD", "1") == "0":
        return None
    if any(os.environ.get(v) for v in _PROXY_VARS) or getattr(client.meta.config, "proxies", None):
        return None
    endpoint = getattr(client.meta, "endpoint_url", "") or ""
    if not endpoint.startswith(("http://", "https://")):
        return None
    verify = getattr(getattr(getattr(client, "_endpoint", None), "http_session", None), "_verify", True)
    if verify is False:
        return None
    ca_certs = verify if isinstance(verify, str) else os.environ.get("AWS_CA_BUNDLE") or None
    if ca_certs is None and endpoint.startswith("https://"):
        try:
            import certifi
        except ImportError:
            return None
        ca_certs = certifi.where()
    timeout = urllib3.Timeout(connect=client.meta.config.connect_timeout, read=client.meta.config.read_timeout)
    return urllib3.PoolManager(
        maxsize=size, cert_reqs="CERT_REQUIRED", ca_certs=ca_certs, timeout=timeout, retries=False
    )


def head(client: Any, pool: Any, bucket: str, key: str) -> tuple[bool, dict[str, Any] | None]:
    """(answered, fields): fields None for a missing key; answered False means "ask boto3 instead"."""
    url = client.generate_presigned_url("head_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=900)
    try:
        resp = pool.request("HEAD", url)
    except Exception:  # noqa: BLE001 - any transport problem: let boto3 (with its retries) answer
        return False, None
    if resp.status == 404:
        return True, None
    if resp.status != 200:
        return False, None
    headers = resp.headers
    meta = {k.lower()[len("x-amz-meta-") :]: v for k, v in headers.items() if k.lower().startswith("x-amz-meta-")}
    modified = headers.get("Last-Modified")
    return True, {
        "size": int(headers.get("Content-Length", 0)),
        "metadata": meta,
        "last_modified": email.utils.parsedate_to_datetime(modified) if modified else None,
        "etag": str(headers.get("ETag", "")).strip('"') or None,
    }


def list_page(client: Any, pool: Any, params: dict[str, Any]) -> dict[str, Any] | None:
    """One ListObjectsV2 page shaped as boto3 returns it (keys decoded), or None to ask boto3 instead."""
    url = client.generate_presigned_url("list_objects_v2", Params={**params, "EncodingType": "url"}, ExpiresIn=900)
    try:
        resp = pool.request("GET", url)
        if resp.status != 200:
            return None
        root = ElementTree.fromstring(resp.data)
        unquote = urllib.parse.unquote_plus
        contents = [
            {
                "Key": unquote(item.findtext(f"{_NS}Key") or ""),
                "Size": int(item.findtext(f"{_NS}Size") or 0),
                "LastModified": _dt.datetime.fromisoformat(
                    (item.findtext(f"{_NS}LastModified") or "").replace("Z", "+00:00")
                ),
                "ETag": item.findtext(f"{_NS}ETag") or "",
            }
            for item in root.iter(f"{_NS}Contents")
        ]
        prefixes = [{"Prefix": unquote(p.findtext(f"{_NS}Prefix") or "")} for p in root.iter(f"{_NS}CommonPrefixes")]
    except Exception:  # noqa: BLE001 - transport or parse problem: let boto3 answer
        return None
    return {
        "Contents": contents,
        "CommonPrefixes": prefixes,
        "IsTruncated": (root.findtext(f"{_NS}IsTruncated") or "false") == "true",
        "NextContinuationToken": root.findtext(f"{_NS}NextContinuationToken"),
    }
