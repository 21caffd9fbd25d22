"""Faults injected by a real proxy (tests/faults.py) between the engine and SeaweedFS: list, stats (also over
folders found from CommonPrefixes), sync (both ways, with delete), migrate and prune give results identical
to a fault-free run when the 1st, 2nd or 3rd LIST request of a 3-page listing fails with 500, 503 SlowDown,
a connection reset or a stall; and a server that ignores If-None-Match gets the engine's clear refusal, with
nothing written.
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from deltaglider_core import DeltaStore, Endpoint
from deltaglider_core.errors import StorageError
from deltaglider_core.ops.migrate import Migration
from deltaglider_core.ops.stats import compute_stats
from deltaglider_core.ops.sync import sync_down, sync_up
from deltaglider_core.transport import s3

from tests.conftest import new_bucket_name
from tests.faults import Credentials, Fault, FaultProxy

pytestmark = pytest.mark.integration
PAGE = 4  # MaxKeys: the 10 keys under data/ (a reference, 3 deltas, 6 whole files) are 3 pages
KINDS = ("500", "503", "reset", "stall")
TIMING = {"duration_s", "objects_per_s"}


@pytest.fixture(scope="module")
def world(seaweed: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The proxy, a bucket with data/ written through it, a local tree to sync up, fault-free results."""
    from example_dags.fake_builds import make_build

    root = tmp_path_factory.mktemp("faults")
    with FaultProxy(seaweed.endpoint_url, Credentials(seaweed.access_key, seaweed.secret_key)) as proxy:
        client = proxy.client()
        bucket = new_bucket_name()
        client.create_bucket(Bucket=bucket)
        with DeltaStore(Endpoint(client, credentials=seaweed.credentials())) as store:
            for v in range(3):
                store.put(make_build(root / "builds", v, size=60_000, members=6), bucket, f"data/app-1.0.{v}.zip")
            for i in range(6):
                (root / f"note-{i}.txt").write_text(f"note {i}\n" * (i + 1))
                store.put(root / f"note-{i}.txt", bucket, f"data/note-{i}.txt")
        for i in range(10):  # ten folders: a delimiter listing of tree/ is 3 pages of CommonPrefixes
            client.put_object(Bucket=bucket, Key=f"tree/d{i:02d}/f.txt", Body=b"x" * (i + 1))
        local = root / "tree"
        local.mkdir()
        for i in range(5):
            (local / f"f{i}.txt").write_text(f"local {i}\n")
        yield {"proxy": proxy, "client": client, "bucket": bucket, "local": local, "root": root,
               "credentials": seaweed.credentials()}  # fmt: skip


def _mirror(world: dict[str, Any]) -> None:
    """mirror/ as sync up finds it: 2 files equal to local ones, 1 different, 6 to delete (3 pages)."""
    client, bucket = world["client"], world["bucket"]
    _clear(client, bucket, "mirror/")
    with DeltaStore(Endpoint(client, credentials=world["credentials"])) as store:
        for i in (0, 1):
            store.put(world["local"] / f"f{i}.txt", bucket, f"mirror/f{i}.txt")
    client.put_object(Bucket=bucket, Key="mirror/f2.txt", Body=b"stale\n")
    for i in range(6):
        client.put_object(Bucket=bucket, Key=f"mirror/old-{i}.txt", Body=b"old\n")


def _clear(client: Any, bucket: str, prefix: str) -> None:
    for obj in client.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", []):
        client.delete_object(Bucket=bucket, Key=obj["Key"])


def _bytes_under(client: Any, bucket: str, prefix: str) -> dict[str, bytes]:
    with DeltaStore(client) as store:
        out = {}
        for info in store.list(bucket, prefix, with_metadata=False):
            got = store.verify(bucket, info.key)
            assert got.sha256
            body = client.get_object(Bucket=bucket, Key=info.stored_key)["Body"].read()
            out[info.key] = body if info.kind != "delta" else got.sha256.encode()
    return out


def _untimed(report: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in report.items() if k not in TIMING}


# Each operation runs in a fresh store (a fresh fast-transport breaker) and returns what a user would compare.
def op_list(world: dict[str, Any], tmp: Path) -> Any:
    with DeltaStore(Endpoint(world["client"], credentials=world["credentials"])) as store:
        return [(o.key, o.kind, o.sha256, o.original_size) for o in store.list(world["bucket"], "data/")]


def op_stats(world: dict[str, Any], tmp: Path) -> Any:
    with DeltaStore(Endpoint(world["client"], credentials=world["credentials"])) as store:
        return _untimed(compute_stats(store, world["bucket"], "data/", kinds=True).to_dict())


def op_stats_folders(world: dict[str, Any], tmp: Path) -> Any:
    """Stats discover folders from CommonPrefixes first: a page of them lost would undercount."""
    with DeltaStore(Endpoint(world["client"], credentials=world["credentials"])) as store:
        report = _untimed(compute_stats(store, world["bucket"], "tree/", kinds=True).to_dict())
    assert report["objects"] == 10
    return report


def op_sync_up(world: dict[str, Any], tmp: Path) -> Any:
    with DeltaStore(Endpoint(world["client"], credentials=world["credentials"])) as store:
        report = sync_up(store, world["local"], world["bucket"], "mirror/", delete=True).to_dict()
    return _untimed(report), _bytes_under(world["client"], world["bucket"], "mirror/")


def op_sync_down(world: dict[str, Any], tmp: Path) -> Any:
    dest = tmp / "down"
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir()
    (dest / "extra.txt").write_text("not in S3\n")
    with DeltaStore(Endpoint(world["client"], credentials=world["credentials"])) as store:
        report = _untimed(sync_down(store, world["bucket"], "data/", dest, delete=True).to_dict())
    report["dest"] = "<dest>"
    report["deleted"] = [Path(p).name for p in report["deleted"]]
    return report, {p.name: p.read_bytes() for p in sorted(dest.iterdir())}


def op_migrate(world: dict[str, Any], tmp: Path) -> Any:
    bucket = world["bucket"]
    with DeltaStore(Endpoint(world["client"], credentials=world["credentials"])) as store:
        report = Migration(store, None, bucket, "data/", bucket, "dest/", preserve_prefix=False).run()
    return _untimed(report.to_dict()), _bytes_under(world["client"], bucket, "dest/")


def op_prune(world: dict[str, Any], tmp: Path) -> Any:
    with DeltaStore(Endpoint(world["client"], credentials=world["credentials"])) as store:
        report = store.prune(world["bucket"], "", grace=dt.timedelta(0), dry_run=True).to_dict()
    return _untimed(report)


OPS: dict[str, Callable[[dict[str, Any], Path], Any]] = {
    "list": op_list,
    "stats": op_stats,
    "stats-folders": op_stats_folders,
    "sync-up": op_sync_up,
    "sync-down": op_sync_down,
    "migrate": op_migrate,
    "prune": op_prune,
}
_SETUP: dict[str, Callable[[dict[str, Any]], None]] = {
    "sync-up": _mirror,
    "migrate": lambda world: _clear(world["client"], world["bucket"], "dest/"),
}


def _run(name: str, world: dict[str, Any], tmp: Path, fault: Fault | None) -> Any:
    _SETUP.get(name, lambda _: None)(world)
    proxy: FaultProxy = world["proxy"]
    proxy.clear()
    if fault is not None:
        proxy.inject(fault)
    try:
        return OPS[name](world, tmp)
    finally:
        proxy.clear()


@pytest.mark.parametrize("name", list(OPS))
def test_a_fault_at_every_page_gives_the_fault_free_result(
    name: str, world: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(s3, "LIST_PAGE_SIZE", PAGE)
    expected = _run(name, world, tmp_path, None)
    for kind in KINDS:
        for position in (1, 2, 3):
            fault = Fault(kind, method="GET", query="list-type=2", nth=position, stall=1.5)
            got = _run(name, world, tmp_path, fault)
            assert fault.fired == 1, f"{name}: the {kind} fault on LIST request {position} never happened"
            assert got == expected, f"{name}: a {kind} on LIST request {position} changed the result"


def test_the_first_listing_really_has_three_pages(world: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(s3, "LIST_PAGE_SIZE", PAGE)
    proxy: FaultProxy = world["proxy"]
    proxy.clear()
    op_list(world, Path("."))
    lists = [path for method, path, _ in proxy.log if method == "GET" and "list-type=2" in path]
    assert len(lists) == 3 and "continuation-token" not in lists[0]
    assert all("continuation-token" in p for p in lists[1:])


def test_a_server_ignoring_if_none_match_gets_the_clear_refusal(world: dict[str, Any], builds: Any) -> None:
    """Through the proxy, conditional PUTs reach SeaweedFS without If-None-Match: the engine's probe sees the
    second PUT succeed and refuses to create a reference, naming the gap; nothing is written."""
    proxy: FaultProxy = world["proxy"]
    proxy.clear()
    proxy.inject(Fault("strip-conditions", method="PUT", header="If-None-Match", times=1_000))
    try:
        with (
            DeltaStore(Endpoint(world["client"], credentials=world["credentials"])) as store,
            pytest.raises(StorageError) as err,
        ):
            store.put(builds(0), world["bucket"], "cond/app-1.0.0.zip")
    finally:
        proxy.clear()
    assert str(err.value).startswith(f"s3://{world['bucket']} ignores conditional writes")
    keys = world["client"].list_objects_v2(Bucket=world["bucket"], Prefix="cond/").get("Contents", [])
    probes = world["client"].list_objects_v2(Bucket=world["bucket"], Prefix=".deltaglider/").get("Contents", [])
    assert keys == [] and probes == []


def test_a_fault_on_a_write_is_retried_or_reported_never_half_done(world: dict[str, Any], builds: Any) -> None:
    """A 503 on the delta PUT is retried by the client; a reset on every PUT of the key fails loudly with the
    key named, and leaves no delta behind."""
    proxy: FaultProxy = world["proxy"]
    bucket, client = world["bucket"], world["client"]
    with DeltaStore(Endpoint(client, credentials=world["credentials"])) as store:
        store.put(builds(0), bucket, "w/app-1.0.0.zip")
        proxy.inject(Fault("503", method="PUT", path="/w/app-1.0.1.zip.delta"))
        assert store.put(builds(1), bucket, "w/app-1.0.1.zip").kind == "delta"
        proxy.clear()
        proxy.inject(Fault("reset", method="PUT", path="/w/app-1.0.2.zip.delta", times=100))
        with pytest.raises(StorageError) as err:
            store.put(builds(2), bucket, "w/app-1.0.2.zip")
        proxy.clear()
        assert f"s3://{bucket}/w/app-1.0.2.zip.delta" in str(err.value) and err.value.retryable
        keys = sorted(o["Key"] for o in client.list_objects_v2(Bucket=bucket, Prefix="w/")["Contents"])
        assert keys == ["w/app-1.0.0.zip.delta", "w/app-1.0.1.zip.delta", "w/reference.bin"]
        got = store.get(bucket, "w/app-1.0.1.zip", world["root"] / "v1.zip")
        assert Path(got.path).read_bytes() == builds(1).read_bytes()
