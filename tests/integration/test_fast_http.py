"""The lighter HEAD/LIST/GET transport answers exactly what boto3 answers, and falls back to boto3 cleanly: through
a fault-injecting proxy (tests/faults.py) for stalls, resets, 503, 403 and redirects, through a forward proxy
named by HTTP_PROXY (and around it by NO_PROXY), and over TLS verified as the client's ``verify`` says."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.credentials import Credentials
from deltaglider_core import Endpoint
from deltaglider_core.errors import NotFound, StorageError
from deltaglider_core.transport.fast_http import USER_AGENT
from deltaglider_core.transport.s3 import S3

from tests.faults import Credentials as ProxyCredentials
from tests.faults import Fault, FaultProxy

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


def _s3(client: Any, seaweed: Any, **options: Any) -> S3:
    return S3(client, credentials=seaweed.credentials(), **options)


@pytest.mark.parametrize("signature", [None, "s3v4"])
def test_fast_path_answers_what_boto3_answers(
    filled: Any, seaweed: Any, monkeypatch: pytest.MonkeyPatch, signature: str | None
) -> None:
    # The client's own presigning default (SigV2 query auth) must not matter: the fast path signs SigV4 itself.
    client = _client(seaweed.endpoint_url, seaweed.access_key, seaweed.secret_key, signature_version=signature)
    fast = _s3(client, seaweed)
    assert fast.fast is not None
    assert S3(client).fast is None  # no credentials handed over: boto3 only
    monkeypatch.setenv("DG_FAST_TRANSPORT", "0")
    slow = _s3(client, seaweed)
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
    s3 = S3(_client(seaweed.endpoint_url, seaweed.access_key, "not-the-secret"),
            credentials=Credentials(seaweed.access_key, "not-the-secret"))  # fmt: skip
    assert s3.fast is not None
    with pytest.raises(StorageError, match=rf"s3://{filled.bucket}/plain.txt.*credentials"):
        s3.head(filled.bucket, "plain.txt")
    assert s3.fast.answered == 0
    assert s3.fast.declined == {"HEAD answered 403": 1}  # counted, logged: boto3 answered (with its error)
    for _ in range(3):  # refused in a row: the breaker opens, boto3 answers alone for a while
        with pytest.raises(StorageError):
            s3.head(filled.bucket, "plain.txt")
    assert s3.fast.declined == {"HEAD answered 403": 3, "breaker open": 1}


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
    from deltaglider_core.transport.s3 import FAST_GET_MAX

    s3 = filled.store().s3
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


@pytest.fixture
def proxy(seaweed: Any) -> Any:
    with FaultProxy(seaweed.endpoint_url, ProxyCredentials(seaweed.access_key, seaweed.secret_key)) as p:
        yield p


def _through(proxy: FaultProxy, seaweed: Any) -> S3:
    """An S3 whose requests (boto3's and the fast path's) all go through the fault proxy; 1 s read timeout."""
    return S3(proxy.client(retries={"max_attempts": 2, "mode": "standard"}), credentials=seaweed.credentials())


def test_a_reset_falls_back_once_then_the_fast_path_answers_again(filled: Any, proxy: Any, seaweed: Any) -> None:
    s3 = _through(proxy, seaweed)
    fault = Fault("reset", method="HEAD", agent="fast-transport")
    proxy.inject(fault)
    heads = [s3.head(filled.bucket, "plain.txt") for _ in range(3)]
    assert all(h is not None and h.size == len(b"plain.txt") for h in heads)
    assert fault.fired == 1
    assert s3.fast is not None and s3.fast.answered == 2  # the 2nd and 3rd: the breaker stays closed
    assert s3.fast.declined == {"HEAD failed: ProtocolError": 1}


def test_a_stalling_endpoint_costs_at_most_three_timeouts(filled: Any, proxy: Any, seaweed: Any) -> None:
    import time

    s3 = _through(proxy, seaweed)
    fault = Fault("stall", method="HEAD", agent="fast-transport", times=100, stall=2.0)
    proxy.inject(fault)
    started = time.monotonic()
    heads = [s3.head(filled.bucket, "plain.txt") for _ in range(10)]
    elapsed = time.monotonic() - started
    assert all(h is not None and h.size == len(b"plain.txt") for h in heads)  # boto3 answered every one
    assert fault.fired == 3  # the breaker opened after three stalls; boto3 alone from then on
    assert elapsed < 3 * 1.0 + 3.0, elapsed  # not ten read timeouts
    assert s3.fast is not None and s3.fast.declined == {"HEAD failed: ReadTimeoutError": 3, "breaker open": 7}
    assert s3.fast.answered == 0


def test_slow_down_waits_before_boto3_retries_never_resent_at_once(filled: Any, proxy: Any, seaweed: Any) -> None:
    s3 = _through(proxy, seaweed)
    assert s3.fast is not None
    waits: list[float] = []
    s3.fast.sleep = waits.append  # type: ignore[method-assign]
    fault = Fault("503", method="GET", query="list-type=2", agent="fast-transport")
    proxy.inject(fault)
    pages = list(s3.pages(filled.bucket, "many/"))
    assert sum(len(p.objects) for p in pages) == 1200 and fault.fired == 1
    assert len(waits) == 1 and 0 <= waits[0] <= 1.0  # waited as the retry mode would, then boto3 asked
    assert s3.fast.declined == {"GET answered 503": 1} and s3.fast.answered == 1  # page 2 came fast again


@pytest.mark.parametrize("kind", ["301", "307"])
def test_a_redirect_leaves_the_bucket_to_boto3(filled: Any, proxy: Any, seaweed: Any, kind: str) -> None:
    s3 = _through(proxy, seaweed)
    fault = Fault(kind, method="HEAD", agent="fast-transport", times=100)
    proxy.inject(fault)
    heads = [s3.head(filled.bucket, key) for key in KEYS[:4]]
    assert [h.size if h else None for h in heads] == [len(k.encode()) for k in KEYS[:4]]  # boto3's answers
    assert fault.fired == 1  # asked once: the bucket is boto3's from then on
    fast_seen = [path for method, path, what in proxy.log if what == kind]
    assert len(fast_seen) == 1
    assert s3.fast is not None
    assert s3.fast.declined == {f"HEAD answered {kind}: bucket left to boto3 from now on": 1, "bucket left to boto3": 3}


@pytest.mark.parametrize("kind", ["400", "403"])
def test_one_refused_key_leaves_only_that_request_to_boto3(filled: Any, proxy: Any, seaweed: Any, kind: str) -> None:
    """A key the server refuses (a policy on its prefix, a name it will not take) is not the bucket's problem
    (#28, finding 10): that request goes to boto3; the next keys come over the fast path again."""
    s3 = _through(proxy, seaweed)
    fault = Fault(kind, method="HEAD", agent="fast-transport", times=1)
    proxy.inject(fault)
    heads = [s3.head(filled.bucket, key) for key in KEYS[:4]]
    assert [h.size if h else None for h in heads] == [len(k.encode()) for k in KEYS[:4]]
    assert fault.fired == 1 and s3.fast is not None
    assert s3.fast.declined == {f"HEAD answered {kind}": 1} and s3.fast.answered == 3


def test_refusals_in_a_row_open_the_breaker_for_a_while(filled: Any, proxy: Any, seaweed: Any) -> None:
    s3 = _through(proxy, seaweed)
    fault = Fault("403", method="HEAD", agent="fast-transport", times=100)
    proxy.inject(fault)
    heads = [s3.head(filled.bucket, key) for key in KEYS[:5]]
    assert [h.size if h else None for h in heads] == [len(k.encode()) for k in KEYS[:5]]  # boto3's answers
    assert fault.fired == 3 and s3.fast is not None  # three in a row: boto3 alone until the breaker cools down
    assert s3.fast.declined == {"HEAD answered 403": 3, "breaker open": 2}


def test_an_http_proxy_is_used_as_boto3_uses_it_and_no_proxy_is_honoured(
    filled: Any, proxy: Any, seaweed: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", proxy.endpoint_url)
    s3 = _s3(_client(seaweed.endpoint_url, seaweed.access_key, seaweed.secret_key), seaweed)
    assert s3.fast is not None
    assert s3.head(filled.bucket, "plain.txt") is not None
    assert sum(len(p.objects) for p in s3.pages(filled.bucket, "dir/")) == 4
    assert s3.fast.answered == 2, (s3.fast.declined, proxy.log)
    agents = [agent for _, url, agent in proxy.proxied if url.startswith(seaweed.endpoint_url)]
    assert agents.count(USER_AGENT) == 2  # both fast requests went through the proxy
    proxy.clear()
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    s3 = _s3(_client(seaweed.endpoint_url, seaweed.access_key, seaweed.secret_key), seaweed)
    assert s3.fast is not None
    assert s3.head(filled.bucket, "plain.txt") is not None
    assert s3.fast.answered == 1 and proxy.proxied == []  # NO_PROXY: straight to the server, as boto3 goes


def test_tls_is_verified_as_the_clients_verify_says(filled: Any, seaweed: Any, tmp_path: Any) -> None:
    from tests.tls import self_signed

    cert, key = self_signed(tmp_path)
    creds = ProxyCredentials(seaweed.access_key, seaweed.secret_key)
    with FaultProxy(seaweed.endpoint_url, creds, tls=(cert, key)) as tls_proxy:
        for verify in (str(cert), False):
            s3 = S3(tls_proxy.client(verify=verify), credentials=seaweed.credentials(), verify=verify)
            assert s3.head(filled.bucket, "plain.txt") is not None
            assert s3.fast is not None and s3.fast.answered == 1, verify
        s3 = S3(tls_proxy.client(retries={"max_attempts": 1}), credentials=seaweed.credentials())
        with pytest.raises(StorageError):  # boto3 does not trust the certificate either
            s3.head(filled.bucket, "plain.txt")
        assert s3.fast is not None and s3.fast.answered == 0
        assert s3.fast.declined == {"HEAD failed: SSLError": 1}


# ---------------------------------------------------------------- small unconditional PUTs
META = {"dg-tool": "deltaglider/6.2.0", "dg-original-name": "build log 7.txt", "dg-file-size": "3000"}
NOT_COMPARED = {"authorization", "x-amz-date", "user-agent", "expect", "amz-sdk-invocation-id", "amz-sdk-request"}


@pytest.mark.parametrize("checksums", ["when_supported", "when_required"])
def test_small_puts_go_fast_with_the_headers_boto3_sends(
    seaweed_s3: Any, proxy: Any, seaweed: Any, tmp_path: Any, checksums: str
) -> None:
    import hashlib

    body = bytes(range(256)) * 11 + b"tail"
    source = tmp_path / "log.txt"
    source.write_bytes(body)
    client = proxy.client(request_checksum_calculation=checksums)
    fast, boto3_only = S3(client, credentials=seaweed.credentials()), S3(client)
    etags = [
        fast.upload(source, seaweed_s3.bucket, "put/fast", META),
        boto3_only.upload(source, seaweed_s3.bucket, "put/boto3", META),
    ]
    assert fast.fast is not None and fast.fast.answered == 1 and not fast.fast.declined
    sent = {path.rpartition("/")[2]: headers for method, path, headers in proxy.requests if method == "PUT"}
    assert sent["fast"]["user-agent"] == USER_AGENT and "Boto3" in sent["boto3"]["user-agent"]
    theirs = {k: v for k, v in sent["boto3"].items() if k not in NOT_COMPARED}
    ours = {k: v for k, v in sent["fast"].items() if k not in NOT_COMPARED}
    assert ours.pop("content-md5") == __import__("base64").b64encode(hashlib.md5(body).digest()).decode()
    assert ours == theirs  # every other header boto3 sends, with its value (payload SHA-256 and CRC32 included)
    assert ("x-amz-checksum-crc32" in ours) == (checksums == "when_supported")
    heads = [
        client.head_object(Bucket=seaweed_s3.bucket, Key=f"put/{k}", ChecksumMode="ENABLED") for k in ("fast", "boto3")
    ]
    for field in ("ETag", "Metadata", "ContentType", "ContentLength", "ChecksumCRC32"):
        assert heads[0].get(field) == heads[1].get(field), field
    assert etags[0] == etags[1] == hashlib.md5(body).hexdigest()
    assert client.get_object(Bucket=seaweed_s3.bucket, Key="put/fast")["Body"].read() == body


def test_a_put_boto3_would_send_otherwise_is_left_to_it(seaweed_s3: Any, seaweed: Any, tmp_path: Any) -> None:
    from deltaglider_core.transport.s3 import FAST_PUT_MAX

    source = tmp_path / "f"
    source.write_bytes(b"x" * 100)
    s3 = seaweed_s3.store().s3
    assert s3.fast is not None
    with pytest.raises(StorageError, match="Non ascii"):  # botocore's own refusal, typed, naming the key
        s3.upload(source, seaweed_s3.bucket, "put/ü", {"dg-original-name": "ü.txt"})
    assert s3.fast.declined == {"PUT metadata boto3 would send otherwise (or refuse)": 1}
    assert s3.upload(source, seaweed_s3.bucket, "put/spaced", {"dg-original-name": "a  b.txt"})  # boto3 sends as is
    assert seaweed_s3.client.head_object(Bucket=seaweed_s3.bucket, Key="put/spaced")["Metadata"] == {
        "dg-original-name": "a  b.txt"
    }
    big = tmp_path / "big"
    big.write_bytes(b"y" * (FAST_PUT_MAX + 1))
    s3.upload(big, seaweed_s3.bucket, "put/big", {})
    s3.upload(source, seaweed_s3.bucket, "put/conditional", {}, if_none_match=True)
    assert s3.fast.answered == 0  # too big, conditional: boto3's


@pytest.mark.parametrize(
    ("kind", "declined"),
    [("reset", "PUT failed: ProtocolError"), ("lost-answer", "PUT failed: ProtocolError"),
     ("503", "PUT answered 503"), ("500", "PUT answered 500")],
)  # fmt: skip
def test_a_failed_fast_put_is_written_once_more_by_boto3(
    seaweed_s3: Any, proxy: Any, seaweed: Any, tmp_path: Any, kind: str, declined: str
) -> None:
    source = tmp_path / "f"
    source.write_bytes(b"payload " * 200)
    s3 = _through(proxy, seaweed)
    assert s3.fast is not None
    waits: list[float] = []
    s3.fast.sleep = waits.append  # type: ignore[method-assign]
    fault = Fault(kind, method="PUT", agent="fast-transport")
    proxy.inject(fault)
    etag = s3.upload(source, seaweed_s3.bucket, "put/faulty", META)
    assert fault.fired == 1 and s3.fast.declined == {declined: 1} and s3.fast.answered == 0
    assert len(waits) == (1 if kind in ("503", "500") else 0)  # a 5xx waits before boto3 retries
    got = seaweed_s3.client.get_object(Bucket=seaweed_s3.bucket, Key="put/faulty")
    assert got["Body"].read() == source.read_bytes() and got["Metadata"] == META and got["ETag"].strip('"') == etag
    puts = [agent_of(headers) for method, _, headers in proxy.requests if method == "PUT"]
    assert puts == ["fast", "boto3"]  # one fast attempt, then boto3's, nothing more
    s3.upload(source, seaweed_s3.bucket, "put/after", META)
    assert s3.fast.answered == 1  # the breaker stayed closed: the next PUT is fast again


def agent_of(headers: dict[str, str]) -> str:
    return "fast" if headers.get("user-agent") == USER_AGENT else "boto3"


def test_a_stalling_put_endpoint_costs_at_most_three_timeouts(
    seaweed_s3: Any, proxy: Any, seaweed: Any, tmp_path: Any
) -> None:
    source = tmp_path / "f"
    source.write_bytes(b"z" * 64)
    s3 = _through(proxy, seaweed)
    fault = Fault("stall", method="PUT", agent="fast-transport", times=100, stall=2.0)
    proxy.inject(fault)
    for i in range(6):
        s3.upload(source, seaweed_s3.bucket, f"put/stall-{i}", {})
    assert fault.fired == 3
    assert s3.fast is not None and s3.fast.declined == {"PUT failed: ReadTimeoutError": 3, "breaker open": 3}
    assert all(
        seaweed_s3.client.head_object(Bucket=seaweed_s3.bucket, Key=f"put/stall-{i}")["ContentLength"] == 64
        for i in range(6)
    )


def test_refused_puts_leave_the_bucket_to_boto3_for_a_while(
    seaweed_s3: Any, proxy: Any, seaweed: Any, tmp_path: Any
) -> None:
    source = tmp_path / "f"
    source.write_bytes(b"r" * 64)
    s3 = _through(proxy, seaweed)
    fault = Fault("403", method="PUT", agent="fast-transport", times=100)
    proxy.inject(fault)
    for i in range(4):
        s3.upload(source, seaweed_s3.bucket, f"put/refused-{i}", {})
    assert fault.fired == 3 and s3.fast is not None and s3.fast.answered == 0
    assert s3.fast.declined == {"PUT answered 403": 3, "breaker open": 1}


def test_conditional_writes_never_take_the_fast_path(seaweed_s3: Any, proxy: Any, seaweed: Any, builds: Any) -> None:
    from deltaglider_core import DeltaStore

    store = DeltaStore(Endpoint(proxy.client(), credentials=seaweed.credentials()))
    for version in range(3):
        store.put(builds(version), seaweed_s3.bucket, f"rel/app-1.0.{version}.zip")
    # A conditional write onto an existing key is refused as asked, and the object stays as it was.
    assert store.s3.upload(builds(9), seaweed_s3.bucket, "rel/app-1.0.1.zip.delta", {}, if_none_match=True) is None
    store.close()
    puts: dict[str, dict[str, str]] = {}
    for method, path, headers in proxy.requests:
        if method == "PUT":
            puts.setdefault(path.rpartition("/")[2], headers)  # each key's first PUT
    assert agent_of(puts["app-1.0.1.zip.delta"]) == "fast" and "if-none-match" not in puts["app-1.0.1.zip.delta"]
    assert agent_of(puts["reference.bin"]) == "boto3" and puts["reference.bin"]["if-none-match"] == "*"
    conditional = [agent_of(h) for method, _, h in proxy.requests if method == "PUT" and "if-none-match" in h]
    assert len(conditional) >= 2 and set(conditional) == {"boto3"}  # every one: the reference, the refused write
    assert seaweed_s3.client.head_object(Bucket=seaweed_s3.bucket, Key="rel/app-1.0.1.zip.delta")["Metadata"]


def test_a_good_answer_resets_the_breaker_count(filled: Any, proxy: Any, seaweed: Any) -> None:
    """Failures spread over time, each followed by good answers, never open the breaker: only failures in a row
    do (#29: the outside probe's "a good answer no longer resets the failure count" went unnoticed)."""
    s3 = _through(proxy, seaweed)
    assert s3.fast is not None
    s3.fast.sleep = lambda _s: None  # type: ignore[method-assign]
    for round_ in range(3):  # 2 failures, then a good answer: 6 failures in all, never 3 in a row
        proxy.inject(Fault("500", method="HEAD", agent="fast-transport", times=2))
        heads = [s3.head(filled.bucket, key) for key in KEYS[:3]]
        assert [h.size if h else None for h in heads] == [len(k.encode()) for k in KEYS[:3]], round_
    assert s3.fast.declined == {"HEAD answered 500": 6}
    assert s3.fast.answered == 3  # the third HEAD of each round came fast: the breaker never opened
