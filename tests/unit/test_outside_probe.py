"""Bugs an outside probe wrote into the code that the suite did not notice (#29), each now caught here or
named beside the test that catches it:

| the probe's bug | caught by |
|---|---|
| the delta writer deletes the old whole copy before its delta PUT | test_a_failed_delta_put_keeps_the_whole_copy |
| the If-Match DELETE probe's answer lands in the If-None-Match cache | test_each_condition_is_probed_for_itself |
| the read's free-space check uses the delta's size, not dg-file-size | test_a_read_checks_space_for_the_declared_size |
| a good answer no longer resets the breaker's failure count | integration/test_fast_http.py (breaker count) |
| MemoryCache keeps an entry larger than its bound | test_memory_cache_never_passes_its_bound (property) |
| migrate reads the source with the destination connection | integration/test_migrate_airflow.py (own connection) |
| resume skips plain copies on size alone | test_migrate.py::test_a_same_size_rewrite_is_migrated_again |
| shard_of uses the per-process hash() | test_shards_are_the_same_in_every_process (property, other hash seeds) |
| a worker that dies mid-call returns -1 | test_codec_worker_failures.py (WorkerDied) |
| encode and decode costs swapped in call_cost | test_a_call_reserves_what_its_kind_costs |
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from deltaglider_core import DeltaStore, StorageError
from deltaglider_core.codec.budget import MIB, decode_cost, encode_cost
from deltaglider_core.codec.pool import call_cost
from deltaglider_core.ops.selection import shard_of
from deltaglider_core.storage.cache import MemoryCache
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.interleave import Intercept

ROOT = Path(__file__).resolve().parents[2]


def _keys(env: Any) -> set[str]:
    return {o["Key"] for o in env.client.list_objects_v2(Bucket=env.bucket).get("Contents", [])}


def test_a_failed_delta_put_keeps_the_whole_copy(moto_s3: Any, builds: Any, tmp_path: Path) -> None:
    old = builds(5).read_bytes()
    DeltaStore(moto_s3.client).put(builds(0), moto_s3.bucket, "rel/app-1.0.0.zip")
    moto_s3.client.put_object(
        Bucket=moto_s3.bucket, Key="rel/app.zip", Body=old,
        Metadata={"dg-file-sha256": hashlib.sha256(old).hexdigest(), "dg-file-size": str(len(old))},
    )  # fmt: skip
    failing = Intercept(moto_s3.client)

    def refuse(_params: dict[str, Any]) -> None:
        raise StorageError("injected: the delta PUT failed")

    failing.before("put_object", refuse, Key="rel/app.zip.delta", times=None)
    with pytest.raises(StorageError, match="injected"):
        DeltaStore(failing).put(builds(1), moto_s3.bucket, "rel/app.zip")
    assert "rel/app.zip" in _keys(moto_s3) and "rel/app.zip.delta" not in _keys(moto_s3)
    got = DeltaStore(moto_s3.client).get(moto_s3.bucket, "rel/app.zip", tmp_path / "back.zip")
    assert got.verified and (tmp_path / "back.zip").read_bytes() == old


def test_each_condition_is_probed_for_itself(moto_s3: Any, builds: Any) -> None:
    """A server that honours If-None-Match on PUT but ignores If-Match on DELETE: a store that first created a
    reference (so it knows the PUT answer) must still find out about deletes, and refuse to store a whole file
    over a delta it could only delete unconditionally."""
    ignores_delete_condition = Intercept(moto_s3.client)
    ignores_delete_condition.before("delete_object", lambda p: p.pop("IfMatch", None), times=None)
    store = DeltaStore(ignores_delete_condition)
    store.put(builds(0), moto_s3.bucket, "rel/app-1.0.0.zip")  # probes If-None-Match: honoured
    store.put(builds(1), moto_s3.bucket, "rel/app.zip")  # a delta
    with pytest.raises(StorageError, match="ignores conditional deletes"):
        store.put(builds(2), moto_s3.bucket, "rel/app.zip", max_ratio=0.0001)  # whole, over the delta
    assert "rel/app.zip.delta" in _keys(moto_s3)


def test_a_read_checks_space_for_the_declared_size(
    moto_s3: Any, builds: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The delta is a few KB; the file it rebuilds is what needs the disk."""
    import shutil

    from deltaglider_core.storage import parts

    store = DeltaStore(moto_s3.client)
    store.put(builds(0), moto_s3.bucket, "rel/app-1.0.0.zip")
    store.put(builds(1), moto_s3.bucket, "rel/app-1.0.1.zip")
    size = builds(1).stat().st_size
    real = shutil.disk_usage

    def just_too_little(path: Any) -> Any:
        usage = real(path)
        return usage._replace(free=parts.SPACE_MARGIN + size - 1)  # enough for the delta, not for the file

    monkeypatch.setattr(parts.shutil, "disk_usage", just_too_little)
    with pytest.raises(StorageError, match="Not enough temporary disk space for reading"):
        DeltaStore(moto_s3.client).get(moto_s3.bucket, "rel/app-1.0.1.zip", tmp_path / "v1.zip")
    assert not (tmp_path / "v1.zip").exists()


@settings(max_examples=60, deadline=None)
@given(bound=st.integers(1, 64 << 10), sizes=st.lists(st.integers(0, 80 << 10), min_size=1, max_size=12))
def test_memory_cache_never_passes_its_bound(
    tmp_path_factory: pytest.TempPathFactory, bound: int, sizes: list[int]
) -> None:
    """For any bound and any sequence of entry sizes: the cache holds at most its bound (sealed bytes, nonces and
    tags included), never keeps an entry that cannot fit, and keeps the newest entry that can."""
    work = tmp_path_factory.mktemp("mc")
    cache = MemoryCache(bound)
    for i, size in enumerate(sizes):
        data = os.urandom(size)
        src = work / f"e{i}"
        src.write_bytes(data)
        sha = hashlib.sha256(data).hexdigest()
        before = cache.used_bytes
        cache.store(sha, src)
        assert cache.used_bytes <= bound
        kept = cache.fetch(sha, work / "out")
        if size + 28 <= bound:  # one 4 MiB record: 12-byte nonce, 16-byte tag
            assert kept and (work / "out").read_bytes() == data
        else:
            assert not kept
            assert cache.used_bytes == before  # an entry that cannot fit evicts nothing on its way out


SHARDS = """
import json, sys
sys.path[:0] = [sys.argv[1], sys.argv[1] + "/core"]
from deltaglider_core.ops.selection import shard_of
print(json.dumps([shard_of(k, 7) for k in json.loads(sys.argv[2])]))
"""


@settings(max_examples=5, deadline=None)
@given(keys=st.lists(st.text(min_size=1, max_size=40), min_size=1, max_size=30))
def test_shards_are_the_same_in_every_process(keys: list[str]) -> None:
    """Mapped shards run on other workers: a group's shard must not depend on the process (its hash seed)."""
    here = [shard_of(k, 7) for k in keys]
    assert all(0 <= s < 7 for s in here)
    for seed in ("1", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run(
            [sys.executable, "-c", SHARDS, str(ROOT), json.dumps(keys)], env=env, capture_output=True, text=True,
            check=True,
        )  # fmt: skip
        assert json.loads(out.stdout) == here


def test_a_call_reserves_what_its_kind_costs() -> None:
    window = 64 * MIB
    assert encode_cost(window) > decode_cost(window)  # so a swap would change what the budget admits
    assert call_cost(["-e", "-9", "-S", "none", "-B", str(window), "-s", "r", "t", "d"]) == encode_cost(window)
    assert call_cost(["-d", "-f", "-S", "none", "-B", str(window), "-s", "r", "d", "o"]) == decode_cost(window)
