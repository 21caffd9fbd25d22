"""Our SigV4 headers are exactly the ones botocore's own S3 signer computes for the same request."""

from __future__ import annotations

import datetime as dt
from unittest import mock

import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotoCredentials
from deltaglider_core.transport.sigv4 import Credentials, SigV4Signer, canonical_query, quote_path

NOW = dt.datetime(2026, 11, 24, 21, 58, 39, tzinfo=dt.timezone.utc)


def _botocore_headers(method: str, url: str, creds: Credentials, region: str) -> dict[str, str]:
    request = AWSRequest(method=method, url=url, headers={})
    boto_creds = BotoCredentials(creds.access_key, creds.secret_key, creds.token)
    with mock.patch("botocore.auth.get_current_datetime", return_value=NOW.replace(tzinfo=None)):
        S3SigV4Auth(boto_creds, "s3", region).add_auth(request)
    return {k.lower(): v for k, v in request.headers.items()}


@pytest.mark.parametrize(
    ("method", "key", "params"),
    [
        ("HEAD", "plain.txt", []),
        ("HEAD", "dir/a b+c%20d.zip.delta", []),
        ("HEAD", "dir/ü-ñ/x&<y>=~;.bin", []),
        ("GET", "", [("list-type", "2"), ("prefix", "dir/ü b+/"), ("delimiter", "/"), ("encoding-type", "url")]),
        ("GET", "", [("list-type", "2"), ("continuation-token", "a/b+c==")]),
    ],
)
@pytest.mark.parametrize("token", [None, "session/token+=="])
def test_headers_match_botocore(method: str, key: str, params: list[tuple[str, str]], token: str | None) -> None:
    creds = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token)
    signer = SigV4Signer(lambda: creds, "eu-west-3")
    path = "/bucket-1/" + quote_path(key) if key else "/bucket-1"
    query = canonical_query(params)
    ours = signer.headers(method, "127.0.0.1:8333", path, query, now=NOW)
    url = f"http://127.0.0.1:8333{path}" + (f"?{query}" if query else "")
    theirs = _botocore_headers(method, url, creds, "eu-west-3")
    assert ours["authorization"] == theirs["authorization"]
    assert ours["x-amz-date"] == theirs["x-amz-date"] == "20261124T215839Z"
    assert ours.get("x-amz-security-token") == theirs.get("x-amz-security-token") == token


def test_signing_key_follows_rotated_credentials() -> None:
    current = [Credentials("AK1", "secret-one")]
    signer = SigV4Signer(lambda: current[0], "us-east-1")
    first = signer.headers("HEAD", "h", "/b/k", "", now=NOW)["authorization"]
    current[0] = Credentials("AK2", "secret-two")
    second = signer.headers("HEAD", "h", "/b/k", "", now=NOW)["authorization"]
    assert "Credential=AK1/" in first and "Credential=AK2/" in second
    assert first.rpartition("Signature=")[2] != second.rpartition("Signature=")[2]
    assert second == _botocore_headers("HEAD", "http://h/b/k", current[0], "us-east-1")["authorization"]


def test_quoting_rules() -> None:
    assert quote_path("a b/c+d~e_f.g-h") == "a%20b/c%2Bd~e_f.g-h"
    assert canonical_query([("b", "x/y"), ("a", "1 2"), ("a", "0")]) == "a=0&a=1%202&b=x%2Fy"


@pytest.mark.parametrize("token", [None, "session/token+=="])
@pytest.mark.parametrize("scheme", ["http", "https"])
def test_put_with_headers_and_payload_hash_matches_botocore(token: str | None, scheme: str) -> None:
    import base64
    import hashlib

    body = b"log line \x00\xff" * 300
    creds = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token)
    extra = {
        "Content-MD5": base64.b64encode(hashlib.md5(body).digest()).decode(),
        "Content-Type": "application/octet-stream",
        "x-amz-meta-dg-original-name": "a b  c.log",  # AWS canonicalises runs of spaces; so must we
        "x-amz-meta-dg-file-sha256": hashlib.sha256(body).hexdigest(),
        "x-amz-checksum-crc32": "AAAAAA==",
        "x-amz-sdk-checksum-algorithm": "CRC32",
    }
    path = "/bucket-1/" + quote_path("logs/ü 1+2.log")
    ours = SigV4Signer(lambda: creds, "us-west-2").headers(
        "PUT", "127.0.0.1:8333", path, "", extra=extra, payload_sha256=hashlib.sha256(body).hexdigest(), now=NOW
    )
    request = AWSRequest(method="PUT", url=f"{scheme}://127.0.0.1:8333{path}", data=body, headers=dict(extra))
    boto_creds = BotoCredentials(creds.access_key, creds.secret_key, creds.token)
    with mock.patch("botocore.auth.get_current_datetime", return_value=NOW.replace(tzinfo=None)):
        # botocore signs the payload's SHA-256 over http (and with payload signing on over https); we always do
        request.context["client_config"] = mock.Mock(s3={"payload_signing_enabled": True})
        S3SigV4Auth(boto_creds, "s3", "us-west-2").add_auth(request)
    theirs = {k.lower(): v for k, v in request.headers.items()}
    assert theirs["x-amz-content-sha256"] == ours["x-amz-content-sha256"] == hashlib.sha256(body).hexdigest()
    assert ours["authorization"] == theirs["authorization"]
    assert "content-md5;content-type;host;x-amz-checksum-crc32" in ours["authorization"]
