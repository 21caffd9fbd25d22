"""The lighter HEAD/LIST transport answers exactly what boto3 answers, and falls back to boto3 cleanly."""

from __future__ import annotations

from typing import Any

import pytest
from deltaglider_core.s3 import S3

pytestmark = pytest.mark.integration

KEYS = [
    "plain.txt",
    "dir/a b+c%20d.zip.delta",
    "dir/ü-ñ/x&<y>.bin",
    "dir/sub/k=v;1",
    *[f"many/{i:04d}" for i in range(1200)],
]


@pytest.fixture
def filled(seaweed_s3: Any) -> Any:
    for key in KEYS:
        seaweed_s3.client.put_object(
            Bucket=seaweed_s3.bucket, Key=key, Body=key.encode(), Metadata={"dg-file-size": "7"}
        )
    return seaweed_s3


def _listing(s3: S3, bucket: str, prefix: str = "", delimiter: str | None = None) -> list[Any]:
    return [
        (sorted((o.key, o.size, o.etag) for o in p.objects), p.prefixes)
        for p in s3.pages(bucket, prefix, delimiter=delimiter)
    ]


def test_fast_path_matches_boto3(filled: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    fast = S3(filled.client)
    assert fast.fast_pool is not None
    monkeypatch.setenv("DG_FAST_HEAD", "0")
    slow = S3(filled.client)
    assert slow.fast_pool is None
    for prefix, delimiter in [("", None), ("dir/", "/"), ("", "/"), ("many/", None)]:
        assert _listing(fast, filled.bucket, prefix, delimiter) == _listing(slow, filled.bucket, prefix, delimiter)
    assert sum(len(p.objects) for p in fast.pages(filled.bucket)) == len(KEYS)
    for key in KEYS[:4]:
        got = fast.head(filled.bucket, key)
        assert got == slow.head(filled.bucket, key)
        assert got is not None and got.metadata == {"dg-file-size": "7"} and got.size == len(key.encode())
    assert fast.head(filled.bucket, "missing-key") is None


def test_fallback_when_the_fast_transport_fails(filled: Any) -> None:
    class Broken:
        def request(self, *args: object, **kwargs: object) -> object:
            raise OSError("connection reset")

    s3 = S3(filled.client)
    s3._fast, s3._fast_checked = Broken(), True
    assert s3.head(filled.bucket, "plain.txt") is not None  # answered by boto3
    assert sum(len(p.objects) for p in s3.pages(filled.bucket, "many/")) == 1200
