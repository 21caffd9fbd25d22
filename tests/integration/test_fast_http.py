"""The lighter HEAD/LIST transport answers exactly what boto3 answers, and falls back to boto3 cleanly."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.config import Config
from deltaglider_core.errors import NotFound, StorageError
from deltaglider_core.s3 import S3

pytestmark = pytest.mark.integration

KEYS = [
    "plain.txt",
    "dir/a b+c%20d.zip.delta",
    "dir/ü-ñ/x&<y>.bin",
    "dir/sub/k=v;1",
    "dir/~tilde/(paren)*star'",
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
        (sorted((o.key, o.size, o.etag, o.last_modified) for o in p.objects), p.prefixes)
        for p in s3.pages(bucket, prefix, delimiter=delimiter)
    ]


def _client(endpoint: str, access: str, secret: str, **config: Any) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=access,
        aws_secret_access_key=secret,
        region_name="us-east-1",
        config=Config(retries={"max_attempts": 1}, **config),
    )


@pytest.mark.parametrize("signature", [None, "s3v4"])
def test_fast_path_answers_what_boto3_answers(
    filled: Any, seaweed: Any, monkeypatch: pytest.MonkeyPatch, signature: str | None
) -> None:
    # The client's own presigning default (SigV2 query auth) must not matter: the fast path signs SigV4 itself.
    client = _client(seaweed.endpoint_url, seaweed.access_key, seaweed.secret_key, signature_version=signature)
    fast = S3(client)
    assert fast.fast is not None
    monkeypatch.setenv("DG_FAST_HEAD", "0")
    slow = S3(client)
    assert slow.fast is None
    for prefix, delimiter in [("", None), ("dir/", "/"), ("", "/"), ("many/", None)]:
        assert _listing(fast, filled.bucket, prefix, delimiter) == _listing(slow, filled.bucket, prefix, delimiter)
    listed_pages = fast.fast.answered
    assert listed_pages >= 6  # every page above came over the fast path (many/ alone is two pages)
    assert sum(len(p.objects) for p in fast.pages(filled.bucket)) == len(KEYS)
    for key in KEYS[:5]:
        got = fast.head(filled.bucket, key)
        assert got == slow.head(filled.bucket, key)
        assert got is not None and got.metadata == {"dg-file-size": "7"} and got.size == len(key.encode())
    assert fast.head(filled.bucket, "missing-key") is None
    assert fast.fast.answered == listed_pages + 2 + 6  # two more pages, six HEADs: none fell back to boto3


def test_wrong_credentials_fall_back_to_boto3_and_its_typed_error(filled: Any, seaweed: Any) -> None:
    s3 = S3(_client(seaweed.endpoint_url, seaweed.access_key, "not-the-secret"))
    assert s3.fast is not None
    with pytest.raises(StorageError, match=rf"s3://{filled.bucket}/plain.txt.*credentials"):
        s3.head(filled.bucket, "plain.txt")
    assert s3.fast.answered == 0
    assert s3.fast._layouts[filled.bucket] is None  # refused once: this bucket is boto3's from now on
    assert s3.fast.declined == {"HEAD answered 403: bucket left to boto3 from now on": 1}  # counted, logged


def test_fallback_when_the_fast_transport_fails(filled: Any) -> None:
    s3 = S3(filled.client)
    assert s3.fast is not None

    class Broken:
        def request(self, *args: object, **kwargs: object) -> object:
            raise OSError("connection reset")

    s3.fast._pool = lambda layout: Broken()  # type: ignore[assignment,method-assign,return-value]
    head = s3.head(filled.bucket, "plain.txt")  # answered by boto3
    assert head is not None and head.size == len(b"plain.txt")
    assert sum(len(p.objects) for p in s3.pages(filled.bucket, "many/")) == 1200
    assert s3.fast.answered == 0
    assert s3.fast.declined["HEAD failed: OSError"] == 1 and s3.fast.declined["GET failed: OSError"] == 2


def test_fast_transport_can_be_switched_off_per_connection(
    filled: Any, seaweed: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    from airflow_provider_deltaglider.hooks.deltaglider import DeltaGliderHook

    for conn_id, extra in [("dg_fast", {}), ("dg_slow", {"fast_transport": "false"})]:
        payload = {"conn_type": "deltaglider", "login": seaweed.access_key, "password": seaweed.secret_key,
                   "extra": {"endpoint_url": seaweed.endpoint_url, "region_name": "us-east-1", **extra}}  # fmt: skip
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(payload))
    fast = DeltaGliderHook("dg_fast").get_store()
    slow = DeltaGliderHook("dg_slow").get_store()
    assert fast.s3.fast is not None and slow.s3.fast is None
    assert fast.head(filled.bucket, "plain.txt").stored_size == slow.head(filled.bucket, "plain.txt").stored_size
    assert fast.s3.fast.answered >= 1


def test_small_downloads_come_over_the_fast_path(filled: Any, tmp_path: Any) -> None:
    from deltaglider_core.s3 import FAST_GET_MAX

    s3 = S3(filled.client)
    assert s3.fast is not None
    big = bytes(range(256)) * ((FAST_GET_MAX // 256) + 10)  # over the limit: must be read through boto3
    filled.client.put_object(Bucket=filled.bucket, Key="big.bin", Body=big, Metadata={"dg-file-size": "9"})
    seen: list[bytes] = []
    head = s3.download(filled.bucket, "dir/ü-ñ/x&<y>.bin", tmp_path / "small", on_chunk=seen.append, size_hint=16)
    assert (tmp_path / "small").read_bytes() == b"".join(seen) == "dir/ü-ñ/x&<y>.bin".encode()
    assert head.metadata == {"dg-file-size": "7"} and head.size == len("dir/ü-ñ/x&<y>.bin".encode())
    assert s3.fast.answered == 1
    # The listing said small, the object is now large: the fast path refuses the body, boto3 reads it whole.
    head = s3.download(filled.bucket, "big.bin", tmp_path / "big", size_hint=10)
    assert (tmp_path / "big").read_bytes() == big and head.size == len(big) and head.metadata == {"dg-file-size": "9"}
    assert s3.fast.answered == 1
    with pytest.raises(NotFound, match=rf"s3://{filled.bucket}/gone"):
        s3.download(filled.bucket, "gone", tmp_path / "gone", size_hint=1)


class _Stub:
    """A loopback HTTP endpoint that stalls (accepts, never answers) or answers every request with one status."""

    def __init__(self, answer: bytes | None) -> None:
        import socket
        import threading

        self.answer = answer
        self.connections = 0
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen()
        self.port = int(self.listener.getsockname()[1])
        self.open: list[Any] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            self.open.append(conn)
            if self.answer is not None:
                conn.recv(65536)
                conn.sendall(self.answer)

    def close(self) -> None:
        self.listener.close()
        for conn in self.open:
            conn.close()


def _route_fast_path_to(s3: S3, bucket: str, stub: _Stub) -> None:
    """Point only the fast transport at the stub; boto3 keeps talking to SeaweedFS."""
    import dataclasses

    fast = s3.fast
    assert fast is not None
    layout = fast._layout(bucket)
    assert layout is not None
    fast._layouts[bucket] = dataclasses.replace(layout, host="127.0.0.1", port=stub.port)


def test_a_stalling_endpoint_costs_at_most_three_timeouts(filled: Any, seaweed: Any) -> None:
    import time

    s3 = S3(_client(seaweed.endpoint_url, seaweed.access_key, seaweed.secret_key, read_timeout=1, connect_timeout=1))
    stub = _Stub(answer=None)
    try:
        _route_fast_path_to(s3, filled.bucket, stub)
        started = time.monotonic()
        heads = [s3.head(filled.bucket, "plain.txt") for _ in range(10)]
        elapsed = time.monotonic() - started
    finally:
        stub.close()
    assert all(h is not None and h.size == len(b"plain.txt") for h in heads)  # boto3 answered every one
    assert stub.connections == 3  # the breaker opened after three stalls
    assert elapsed < 3 * 1.0 + 3.0, elapsed  # not ten (or twenty) read timeouts
    assert s3.fast is not None and s3.fast.declined["HEAD failed: TimeoutError"] == 3


def test_slow_down_is_not_resent_at_once(filled: Any, seaweed: Any) -> None:
    s3 = S3(_client(seaweed.endpoint_url, seaweed.access_key, seaweed.secret_key))
    body = b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>"
    stub = _Stub(answer=b"HTTP/1.1 503 Slow Down\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
    waits: list[float] = []
    try:
        _route_fast_path_to(s3, filled.bucket, stub)
        assert s3.fast is not None
        s3.fast.sleep = waits.append  # type: ignore[method-assign]
        heads = [s3.head(filled.bucket, "plain.txt") for _ in range(5)]
    finally:
        stub.close()
    assert all(h is not None for h in heads)
    assert len(waits) == 3 and all(0 <= w <= 1.0 for w in waits)  # each 503 waited before boto3 retried
    assert s3.fast.declined["HEAD answered 503"] == 3 and stub.connections >= 1
