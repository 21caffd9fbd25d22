"""This project's side of each workload, run in a fresh process (``python -m benchmarks.ours OP ...``) so
its wall time and peak RSS are its own. Prints one JSON line."""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def _client() -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=os.environ["BENCH_ENDPOINT"],
        region_name="us-east-1",
        config=Config(
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            max_pool_connections=32,
        ),
    )


def _store(**kwargs: Any) -> Any:
    """A store as the hook makes one: the session's credentials handed over, so the fast transport can sign
    (``DG_FAST_TRANSPORT=0`` in the environment measures boto3 alone)."""
    import boto3
    from deltaglider_core import DeltaStore, Endpoint, StoreConfig

    endpoint = Endpoint(_client(), credentials=boto3.Session().get_credentials())
    return DeltaStore(endpoint, StoreConfig.from_env(**kwargs))


def op_upload(bucket: str, prefix: str, *files: str) -> dict[str, Any]:
    store = _store(rebase=os.environ.get("BENCH_REBASE", "1") == "1")
    times, kinds, refs, stored = [], [], [], 0
    started = time.perf_counter()
    for f in files:
        t = time.perf_counter()
        res = store.put(f, bucket, prefix + Path(f).name)
        times.append(time.perf_counter() - t)
        kinds.append(res.kind)
        refs.append(res.ref_key)
        stored += res.stored_size
    return {"seconds": time.perf_counter() - started, "per_file_s": times, "kinds": kinds, "refs": refs,
            "stored": stored}  # fmt: skip


def op_upload_parallel(workers: str, bucket: str, *files: str) -> dict[str, Any]:
    """Upload each file into its own deltaspace (``p<i>/``) on ``workers`` threads of one store."""
    from concurrent.futures import ThreadPoolExecutor

    n = int(workers)
    store = _store(max_workers=n)
    started = time.perf_counter()
    if n > 1:
        store.warm_up()  # as the upload operator does before parallel work (run_grouped)
    with ThreadPoolExecutor(n) as pool:
        results = list(pool.map(lambda item: store.put(item[1], bucket, f"p{item[0]}/{Path(item[1]).name}"),
                                enumerate(files)))  # fmt: skip
    seconds = time.perf_counter() - started
    store.close()
    return {"seconds": seconds, "kinds": [r.kind for r in results]}


def op_put_one(bucket: str, key: str, path: str) -> dict[str, Any]:
    """One put in a fresh store (``BENCH_BUDGET_MB`` sets the memory budget)."""
    budget = os.environ.get("BENCH_BUDGET_MB")
    store = _store(memory_budget_mb=int(budget) if budget else None)
    started = time.perf_counter()
    res = store.put(path, bucket, key)
    seconds = time.perf_counter() - started
    store.close()
    return {"seconds": seconds, "kind": res.kind, "stored": res.stored_size, "window": store.window}


def op_get_one(bucket: str, key: str, dest: str) -> dict[str, Any]:
    budget = os.environ.get("BENCH_BUDGET_MB")
    store = _store(memory_budget_mb=int(budget) if budget else None)
    started = time.perf_counter()
    got = store.get(bucket, key, Path(dest))
    seconds = time.perf_counter() - started
    store.close()
    return {"seconds": seconds, "size": got.size}


def op_download(bucket: str, dest: str, *keys: str) -> dict[str, Any]:
    store = _store()
    started = time.perf_counter()
    total = 0
    for key in keys:
        total += store.get(bucket, key, Path(dest)).size
    return {"seconds": time.perf_counter() - started, "bytes": total}


def op_migrate(src_bucket: str, src_prefix: str, dst_bucket: str, dst_prefix: str) -> dict[str, Any]:
    from deltaglider_core.ops.migrate import Migration

    workers = int(os.environ.get("BENCH_WORKERS", "8"))
    store = _store(max_workers=workers)
    report = Migration(store, None, src_bucket, src_prefix, dst_bucket, dst_prefix,
                       max_workers=workers).run()  # fmt: skip
    store.close()
    return {"seconds": report.duration_s, "migrated": report.migrated, "failed": report.failed,
            "bytes_in": report.bytes_in, "bytes_stored": report.bytes_stored}  # fmt: skip


def op_stats(bucket: str) -> dict[str, Any]:
    from deltaglider_core.ops.stats import compute_stats

    store = _store()
    started = time.perf_counter()
    stats = compute_stats(store, bucket, detailed=True, max_workers=32)
    return {"seconds": time.perf_counter() - started, "objects": stats.objects,
            "original_bytes": stats.original_bytes, "stored_bytes": stats.stored_bytes}  # fmt: skip


def op_poke(bucket: str, prefix: str, pattern: str) -> dict[str, Any]:
    from deltaglider_core.ops.releases import ReleaseQuery, find_releases

    store = _store()
    started = time.perf_counter()
    found = find_releases(store, ReleaseQuery(bucket, prefix, pattern))
    return {"seconds": time.perf_counter() - started, "releases": len(found)}


def op_floor(*pairs: str) -> dict[str, Any]:
    """Raw codec encode/decode and SHA-256 of each (source, target) pair: the floor of any upload."""
    from deltaglider_core.codec.xdelta3 import default_codec

    codec = default_codec()
    enc, dec, sha = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for source, target in zip(pairs[::2], pairs[1::2], strict=True):
            t = time.perf_counter()
            codec.encode(Path(source), Path(target), Path(tmp) / "d")
            enc.append(time.perf_counter() - t)
            t = time.perf_counter()
            codec.decode(Path(source), Path(tmp) / "d", Path(tmp) / "o")
            dec.append(time.perf_counter() - t)
            t = time.perf_counter()
            with open(target, "rb") as fh:
                digest = hashlib.sha256()
                while chunk := fh.read(1 << 20):
                    digest.update(chunk)
            sha.append(time.perf_counter() - t)
    return {"encode_s": enc, "decode_s": dec, "sha256_s": sha}


def op_encode_only(source: str, target: str) -> dict[str, Any]:
    from deltaglider_core.codec.xdelta3 import default_codec

    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        default_codec().encode(Path(source), Path(target), Path(tmp) / "d")
        return {"seconds": time.perf_counter() - t, "delta": (Path(tmp) / "d").stat().st_size}


def main(argv: list[str]) -> int:
    op, args = argv[0], argv[1:]
    result = globals()[f"op_{op.replace('-', '_')}"](*args)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
