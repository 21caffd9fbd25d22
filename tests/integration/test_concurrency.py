"""Eight writers hit one fresh prefix at the same moment; every file must read back byte-identical."""

from __future__ import annotations

import hashlib
import multiprocessing as mp
from pathlib import Path
from typing import Any

import pytest
from deltaglider_core import DeltaStore

pytestmark = pytest.mark.integration

WRITERS = 8


def _writer(endpoint: str, access: str, secret: str, bucket: str, path: str, barrier: Any, out: Any) -> None:
    import boto3

    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=access,
        aws_secret_access_key=secret,
        region_name="us-east-1",
    )
    store = DeltaStore(client)
    barrier.wait()
    result = store.put(path, bucket, f"race/{Path(path).name}")
    out.put(result.to_dict())


def test_eight_parallel_first_uploads_lose_nothing(seaweed_s3: Any, builds: Any, tmp_path: Path) -> None:
    files = [builds(v) for v in range(WRITERS)]
    ctx = mp.get_context("fork")
    barrier, out = ctx.Barrier(WRITERS), ctx.Queue()
    args = (seaweed_s3.endpoint_url, seaweed_s3.access_key, seaweed_s3.secret_key, seaweed_s3.bucket)
    procs = [ctx.Process(target=_writer, args=(*args, str(f), barrier, out)) for f in files]
    for p in procs:
        p.start()
    results = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    # Exactly one writer created reference.bin; the others encoded against it (a later writer may
    # legitimately start a re-based reference under .dg-bases/, never replace this one).
    created = [r["key"] for r in results if r["reference_created"] and r["ref_key"] == "race/reference.bin"]
    assert len(created) == 1, results
    meta = seaweed_s3.client.head_object(Bucket=seaweed_s3.bucket, Key="race/reference.bin")["Metadata"]
    assert meta["dg-source-name"] == created[0].rpartition("/")[2]
    reader = seaweed_s3.store()
    for f in files:
        res = reader.get(seaweed_s3.bucket, f"race/{f.name}", tmp_path / f.name)
        assert hashlib.sha256(Path(res.path).read_bytes()).digest() == hashlib.sha256(f.read_bytes()).digest()
    refs = seaweed_s3.client.list_objects_v2(Bucket=seaweed_s3.bucket, Prefix="race/reference.bin")
    assert refs["KeyCount"] == 1
