"""Prune's trash never loses bytes a delta names (issue #28, finding 1), on moto.

The starting state is the one prune.py's own race leaves: a delta was stored against reference R, and prune
then moved R to its trash (copy, delete) because its listing came before the delta. Readers use the trash
copy until the next prune puts R back. What must not happen: a writer creating new bytes at R's key, and
prune then dropping the trash copy because "the key is back".
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import time
from pathlib import Path
from typing import Any

import pytest
from deltaglider_core import DeltaStore, IntegrityError
from deltaglider_core.storage.prune import prune

TRASH = ".deltaglider/trash/"
GRACE0 = dt.timedelta(0)


def _keys(env: Any) -> list[str]:
    pages = env.client.get_paginator("list_objects_v2").paginate(Bucket=env.bucket)
    return sorted(o["Key"] for p in pages for o in p.get("Contents", []))


def _trash(env: Any, key: str) -> None:
    """What prune's phase 1 does to ``key``: a server-side copy into the trash, then the delete."""
    env.client.copy_object(
        Bucket=env.bucket, Key=TRASH + key, CopySource={"Bucket": env.bucket, "Key": key}, MetadataDirective="COPY"
    )
    env.client.delete_object(Bucket=env.bucket, Key=key)


def _get(env: Any, key: str, tmp: Path) -> bytes:
    """Read through a store of its own (no cache shared with the writer), so the reference comes from S3."""
    out = tmp / f"out-{time.monotonic_ns()}"
    DeltaStore(env.client).get(env.bucket, key, out)
    return out.read_bytes()


@pytest.fixture
def raced(moto_s3: Any, builds: Any) -> tuple[Path, Path]:
    """v1 stored as a delta against R = rel/reference.bin (made from v0); R then trashed by a prune."""
    v0, v1 = builds(0), builds(1)
    writer = DeltaStore(moto_s3.client)
    writer.put(v0, moto_s3.bucket, "rel/app-1.0.0.zip")
    writer.put(v1, moto_s3.bucket, "rel/app-1.0.1.zip")
    moto_s3.client.delete_object(Bucket=moto_s3.bucket, Key="rel/app-1.0.0.zip.delta")
    _trash(moto_s3, "rel/reference.bin")
    return v0, v1


def test_a_new_writer_never_creates_a_reference_over_a_live_trash_entry(
    moto_s3: Any, raced: tuple[Path, Path], builds: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _, v1 = raced
    v2 = builds(2)
    put = DeltaStore(moto_s3.client).put(v2, moto_s3.bucket, "rel/app-1.0.2.zip")
    assert put.kind == "reference" and put.ref_key == "rel/.dg-bases/0001/reference.bin"
    assert "rel/reference.bin" not in _keys(moto_s3)
    with caplog.at_level(logging.WARNING):
        assert _get(moto_s3, "rel/app-1.0.1.zip", tmp_path) == v1.read_bytes()
    assert "is missing: read from prune's trash" in caplog.text
    report = DeltaStore(moto_s3.client).prune(moto_s3.bucket, grace=GRACE0)
    assert (report.restored, report.purged, report.held) == (("rel/reference.bin",), (), ())
    assert _keys(moto_s3) == [
        "rel/.dg-bases/0001/reference.bin",
        "rel/app-1.0.1.zip.delta",
        "rel/app-1.0.2.zip.delta",
        "rel/reference.bin",
    ]
    assert _get(moto_s3, "rel/app-1.0.1.zip", tmp_path) == v1.read_bytes()
    assert _get(moto_s3, "rel/app-1.0.2.zip", tmp_path) == v2.read_bytes()


def test_a_key_recreated_with_other_bytes_holds_the_trash_entry_and_readers_use_it(
    moto_s3: Any, raced: tuple[Path, Path], builds: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Another tool (DeltaGlider itself, a hand-made upload) writes new bytes at the trashed reference's key."""
    _, v1 = raced
    other = builds(7).read_bytes()
    moto_s3.client.put_object(
        Bucket=moto_s3.bucket, Key="rel/reference.bin", Body=other,
        Metadata={"dg-file-sha256": hashlib.sha256(other).hexdigest(), "dg-note": "reference"},
    )  # fmt: skip
    with caplog.at_level(logging.WARNING):
        assert _get(moto_s3, "rel/app-1.0.1.zip", tmp_path) == v1.read_bytes()
    assert "holds other bytes: read from prune's trash" in caplog.text
    report = DeltaStore(moto_s3.client).prune(moto_s3.bucket, grace=GRACE0)
    assert (report.held, report.restored, report.purged, report.trashed) == ((TRASH + "rel/reference.bin",), (), (), ())
    assert TRASH + "rel/reference.bin" in _keys(moto_s3)
    assert _get(moto_s3, "rel/app-1.0.1.zip", tmp_path) == v1.read_bytes()
    # Once no delta names the trashed bytes, the entry goes; the key's own reference is what prune then weighs.
    DeltaStore(moto_s3.client).delete(moto_s3.bucket, "rel/app-1.0.1.zip")
    done = DeltaStore(moto_s3.client).prune(moto_s3.bucket, grace=GRACE0)
    assert done.purged == (TRASH + "rel/reference.bin",) and done.held == ()


def test_a_trash_copy_with_other_bytes_is_not_taken_for_the_reference(
    moto_s3: Any, raced: tuple[Path, Path], tmp_path: Path
) -> None:
    """Both the key and its trash entry hold bytes the delta does not name: a typed error, no file left."""
    bad = b"not the reference"
    moto_s3.client.put_object(
        Bucket=moto_s3.bucket, Key=TRASH + "rel/reference.bin", Body=bad,
        Metadata={"dg-file-sha256": hashlib.sha256(bad).hexdigest()},
    )  # fmt: skip
    moto_s3.client.put_object(Bucket=moto_s3.bucket, Key="rel/reference.bin", Body=bad)
    with pytest.raises(IntegrityError, match=r"s3://.*/rel/reference.bin is corrupt"):
        _get(moto_s3, "rel/app-1.0.1.zip", tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_phase_one_never_trashes_over_a_live_entry(moto_s3: Any, builds: Any) -> None:
    """An unnamed reference whose trash slot is still taken (the entry waits out its grace) stays in place."""
    v0 = builds(0)
    store = DeltaStore(moto_s3.client)
    store.put(v0, moto_s3.bucket, "rel/app-1.0.0.zip")
    store.delete(moto_s3.bucket, "rel/app-1.0.0.zip")
    older = moto_s3.client.head_object(Bucket=moto_s3.bucket, Key="rel/reference.bin")["LastModified"]
    time.sleep(1.1)  # LastModified has one-second resolution
    moto_s3.client.put_object(Bucket=moto_s3.bucket, Key=TRASH + "rel/reference.bin", Body=b"earlier bytes")
    report = prune(store.s3, moto_s3.bucket, grace=GRACE0, now=older + dt.timedelta(seconds=0.5))
    assert (report.trashed, report.kept_recent, report.purged) == ((), ("rel/reference.bin",), ())
    body = moto_s3.client.get_object(Bucket=moto_s3.bucket, Key=TRASH + "rel/reference.bin")["Body"].read()
    assert body == b"earlier bytes"
    assert "rel/reference.bin" in _keys(moto_s3)
