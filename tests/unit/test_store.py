"""DeltaStore on moto: layout, metadata, reads, errors, listing, delete."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import pytest
from deltaglider_core import (
    BucketNotFound,
    DeltaStore,
    IntegrityError,
    InvalidLocation,
    NotFound,
    StoreConfig,
)
from deltaglider_core.errors import CodecError, DeltaGliderError, StorageError
from deltaglider_core.storage.cache import SUFFIX
from deltaglider_core.storage.format import Location
from deltaglider_core.support.digest import digest_file


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _meta(env: Any, key: str) -> dict[str, str]:
    return env.client.head_object(Bucket=env.bucket, Key=key)["Metadata"]


def _keys(env: Any) -> list[str]:
    pages = env.client.get_paginator("list_objects_v2").paginate(Bucket=env.bucket)
    return sorted(o["Key"] for p in pages for o in p.get("Contents", []))


@pytest.fixture
def store(moto_s3: Any) -> DeltaStore:
    return DeltaStore(moto_s3.client)


def test_first_archive_becomes_reference_then_deltas(moto_s3: Any, store: DeltaStore, builds: Any) -> None:
    v0, v1 = builds(0), builds(1)
    first = store.put(v0, moto_s3.bucket, "rel/app-1.0.0.zip")
    second = store.put(v1, moto_s3.bucket, "rel/app-1.0.1.zip")
    assert _keys(moto_s3) == ["rel/app-1.0.0.zip.delta", "rel/app-1.0.1.zip.delta", "rel/reference.bin"]
    assert first.kind == "reference" and first.reference_created
    assert second.kind == "delta" and second.ref_key == "rel/reference.bin"
    assert second.stored_size < v1.stat().st_size // 2
    ref_meta = _meta(moto_s3, "rel/reference.bin")
    assert ref_meta["dg-note"] == "reference"
    assert ref_meta["dg-source-name"] == "app-1.0.0.zip"
    assert ref_meta["dg-file-sha256"] == _sha(v0)
    meta = _meta(moto_s3, "rel/app-1.0.1.zip.delta")
    assert meta["dg-ref-key"] == "rel/reference.bin"
    assert meta["dg-ref-sha256"] == _sha(v0)
    assert meta["dg-file-sha256"] == _sha(v1) == second.sha256
    assert meta["dg-file-size"] == str(v1.stat().st_size)
    assert meta["dg-delta-size"] == str(second.stored_size)
    assert meta["dg-md5"] == hashlib.md5(v1.read_bytes()).hexdigest()
    assert meta["dg-original-name"] == "app-1.0.1.zip"
    assert meta["dg-delta-cmd"].startswith("xdelta3 -e -9 -S none -B ")
    assert meta["dg-delta-cmd"].endswith("-s reference.bin app-1.0.1.zip app-1.0.1.zip.delta")
    assert meta["dg-tool"].startswith("deltaglider/")
    assert meta["dg-format-version"] == "1"
    assert _meta(moto_s3, "rel/app-1.0.0.zip.delta")["dg-note"] == "zero-diff (reference identical)"


def test_reference_upload_accounts_for_the_reference_bytes(moto_s3: Any, store: DeltaStore, builds: Any) -> None:
    v0 = builds(0)
    res = store.put(v0, moto_s3.bucket, "rel/app-1.0.0.zip")
    zero = moto_s3.client.head_object(Bucket=moto_s3.bucket, Key="rel/app-1.0.0.zip.delta")["ContentLength"]
    assert res.stored_size == v0.stat().st_size + zero
    assert res.to_dict()["kind"] == "reference"


def test_get_is_byte_identical_for_every_kind(moto_s3: Any, store: DeltaStore, builds: Any, tmp_path: Path) -> None:
    v0, v1 = builds(0), builds(1)
    notes = tmp_path / "notes.txt"
    notes.write_text("plain text\n" * 100)
    store.put(v0, moto_s3.bucket, "rel/app-1.0.0.zip")
    store.put(v1, moto_s3.bucket, "rel/app-1.0.1.zip")
    direct = store.put(notes, moto_s3.bucket, "rel/notes.txt")
    assert direct.kind == "direct" and direct.stored_key == "rel/notes.txt"
    assert _meta(moto_s3, "rel/notes.txt")["dg-compression"] == "none"
    moto_s3.client.put_object(Bucket=moto_s3.bucket, Key="rel/other.bin", Body=b"foreign bytes")
    out = tmp_path / "out"
    out.mkdir()
    for key, original, kind in [
        ("rel/app-1.0.0.zip", v0, "delta"),
        ("rel/app-1.0.1.zip", v1, "delta"),
        ("rel/notes.txt", notes, "direct"),
    ]:
        res = store.get(moto_s3.bucket, key, out)
        assert Path(res.path).read_bytes() == original.read_bytes()
        assert res.kind == kind and res.verified and res.sha256 == _sha(original)
    regular = store.get(moto_s3.bucket, "rel/other.bin", out / "x.bin")
    assert (out / "x.bin").read_bytes() == b"foreign bytes"
    assert regular.kind == "regular" and not regular.verified
    assert sorted(p.name for p in out.iterdir()) == ["app-1.0.0.zip", "app-1.0.1.zip", "notes.txt", "x.bin"]


def test_poor_delta_is_stored_directly_and_reference_untouched(
    moto_s3: Any, store: DeltaStore, builds: Any, tmp_path: Path
) -> None:
    store.put(builds(0), moto_s3.bucket, "rel/app-1.0.0.zip")
    ref_before = moto_s3.client.head_object(Bucket=moto_s3.bucket, Key="rel/reference.bin")["ETag"]
    unrelated = builds(0, seed=99, name="other")
    res = store.put(unrelated, moto_s3.bucket, "rel/other-1.0.0.zip")
    assert res.kind == "direct" and res.delta_ratio is not None and res.delta_ratio > 0.5
    assert _keys(moto_s3) == ["rel/app-1.0.0.zip.delta", "rel/other-1.0.0.zip", "rel/reference.bin"]
    assert moto_s3.client.head_object(Bucket=moto_s3.bucket, Key="rel/reference.bin")["ETag"] == ref_before
    assert store.get(moto_s3.bucket, "rel/other-1.0.0.zip", tmp_path / "o.zip").sha256 == _sha(unrelated)


def test_max_ratio_override_per_call(moto_s3: Any, store: DeltaStore, builds: Any) -> None:
    store.put(builds(0), moto_s3.bucket, "rel/app-1.0.0.zip")
    res = store.put(builds(1), moto_s3.bucket, "rel/app-1.0.1.zip", max_ratio=0.0001)
    assert res.kind == "direct"
    with pytest.raises(Exception, match=r"max_ratio=1.5 is out of range"):
        store.put(builds(2), moto_s3.bucket, "rel/app-1.0.2.zip", max_ratio=1.5)


def test_reupload_replaces_other_representation(moto_s3: Any, store: DeltaStore, builds: Any) -> None:
    store.put(builds(0), moto_s3.bucket, "rel/app-1.0.0.zip")
    store.put(builds(1), moto_s3.bucket, "rel/app-1.0.1.zip", max_ratio=0.0001)  # direct
    store.put(builds(1), moto_s3.bucket, "rel/app-1.0.1.zip")  # now a delta
    assert _keys(moto_s3) == ["rel/app-1.0.0.zip.delta", "rel/app-1.0.1.zip.delta", "rel/reference.bin"]
    assert [o.key for o in store.list(moto_s3.bucket)] == ["rel/app-1.0.0.zip", "rel/app-1.0.1.zip"]


def test_missing_bucket_fails_clearly(moto_s3: Any, store: DeltaStore, builds: Any, tmp_path: Path) -> None:
    with pytest.raises(BucketNotFound, match="Bucket 'no-such-bucket-x' does not exist"):
        store.put(builds(0), "no-such-bucket-x", "a/app.zip")
    with pytest.raises(BucketNotFound, match="no-such-bucket-x"):
        store.get("no-such-bucket-x", "a/app.zip", tmp_path / "o.zip")
    with pytest.raises(BucketNotFound):
        list(store.list("no-such-bucket-x"))
    assert not (tmp_path / "o.zip").exists()


def test_missing_key_and_bad_local_paths(moto_s3: Any, store: DeltaStore, tmp_path: Path) -> None:
    with pytest.raises(NotFound, match=f"s3://{moto_s3.bucket}/a/none.zip does not exist"):
        store.get(moto_s3.bucket, "a/none.zip", tmp_path / "o.zip")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(InvalidLocation, match="does not exist or is not a regular file"):
        store.put(tmp_path / "missing.zip", moto_s3.bucket, "a/x.zip")
    with pytest.raises(InvalidLocation, match="reserved for delta references"):
        store.put(tmp_path, moto_s3.bucket, "a/reference.bin")
    with pytest.raises(InvalidLocation, match="Destination directory .* does not exist"):
        store.get(moto_s3.bucket, "a/none.zip", tmp_path / "nodir" / "o.zip")


def test_corrupt_delta_fails_and_leaves_nothing(moto_s3: Any, store: DeltaStore, builds: Any, tmp_path: Path) -> None:
    store.put(builds(0), moto_s3.bucket, "rel/app-1.0.0.zip")
    store.put(builds(1), moto_s3.bucket, "rel/app-1.0.1.zip")
    key = "rel/app-1.0.1.zip.delta"
    obj = moto_s3.client.get_object(Bucket=moto_s3.bucket, Key=key)
    body = bytearray(obj["Body"].read())
    body[len(body) // 2] ^= 0xFF
    moto_s3.client.put_object(Bucket=moto_s3.bucket, Key=key, Body=bytes(body), Metadata=obj["Metadata"])
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(IntegrityError, match=f"s3://{moto_s3.bucket}/{key}"):
        store.get(moto_s3.bucket, "rel/app-1.0.1.zip", out)
    assert list(out.iterdir()) == []


def test_wrong_hash_fails_and_leaves_nothing(moto_s3: Any, store: DeltaStore, builds: Any, tmp_path: Path) -> None:
    store.put(builds(0), moto_s3.bucket, "rel/app-1.0.0.zip")
    store.put(builds(1), moto_s3.bucket, "rel/app-1.0.1.zip")
    key = "rel/app-1.0.1.zip.delta"
    obj = moto_s3.client.get_object(Bucket=moto_s3.bucket, Key=key)
    meta = {**obj["Metadata"], "dg-file-sha256": "0" * 64}
    moto_s3.client.put_object(Bucket=moto_s3.bucket, Key=key, Body=obj["Body"].read(), Metadata=meta)
    with pytest.raises(IntegrityError, match="failed verification.*expected 0000"):
        store.get(moto_s3.bucket, "rel/app-1.0.1.zip", tmp_path / "o.zip")
    assert list(tmp_path.iterdir()) == []


def test_missing_and_corrupt_reference(moto_s3: Any, builds: Any, tmp_path: Path) -> None:
    writer = DeltaStore(moto_s3.client)
    writer.put(builds(0), moto_s3.bucket, "rel/app-1.0.0.zip")
    writer.put(builds(1), moto_s3.bucket, "rel/app-1.0.1.zip")
    reader = DeltaStore(moto_s3.client)  # fresh cache: must fetch the reference from S3
    ref = moto_s3.client.get_object(Bucket=moto_s3.bucket, Key="rel/reference.bin")
    data, meta = bytearray(ref["Body"].read()), ref["Metadata"]
    data[100] ^= 1
    moto_s3.client.put_object(Bucket=moto_s3.bucket, Key="rel/reference.bin", Body=bytes(data), Metadata=meta)
    with pytest.raises(IntegrityError, match="Reference s3://.*/rel/reference.bin is corrupt"):
        reader.get(moto_s3.bucket, "rel/app-1.0.1.zip", tmp_path / "o.zip")
    moto_s3.client.delete_object(Bucket=moto_s3.bucket, Key="rel/reference.bin")
    with pytest.raises(NotFound, match="Reference s3://.*/rel/reference.bin is missing"):
        reader.get(moto_s3.bucket, "rel/app-1.0.1.zip", tmp_path / "o.zip")
    assert list(tmp_path.iterdir()) == []


def test_tampered_cache_is_refetched(moto_s3: Any, builds: Any, tmp_path: Path) -> None:
    store = DeltaStore(moto_s3.client, StoreConfig(cache_backend="filesystem"))
    v1 = builds(1)
    store.put(builds(0), moto_s3.bucket, "rel/app-1.0.0.zip")
    store.put(v1, moto_s3.bucket, "rel/app-1.0.1.zip")
    entries = list(store.cache.directory.glob(f"*{SUFFIX}"))  # type: ignore[attr-defined]
    assert len(entries) == 1
    entries[0].write_bytes(b"\x00\x00\x00\x05junk!")
    reader = DeltaStore(moto_s3.client, cache=store.cache)  # same cache, nothing decrypted in memory yet
    res = reader.get(moto_s3.bucket, "rel/app-1.0.1.zip", tmp_path / "o.zip")
    assert res.sha256 == _sha(v1)
    assert entries[0].exists()  # re-fetched from S3 and cached again, valid


def test_legacy_metadata_spellings_are_read(moto_s3: Any, store: DeltaStore, builds: Any, tmp_path: Path) -> None:
    v0, v1 = builds(0), builds(1)
    store.put(v0, moto_s3.bucket, "rel/app-1.0.0.zip")
    store.put(v1, moto_s3.bucket, "rel/app-1.0.1.zip")
    key = "rel/app-1.0.1.zip.delta"
    obj = moto_s3.client.get_object(Bucket=moto_s3.bucket, Key=key)
    legacy = {k.replace("dg-", "").replace("-", "_"): v for k, v in obj["Metadata"].items()}
    assert "ref_key" in legacy and "file_sha256" in legacy
    moto_s3.client.put_object(Bucket=moto_s3.bucket, Key=key, Body=obj["Body"].read(), Metadata=legacy)
    fresh = DeltaStore(moto_s3.client)
    assert fresh.get(moto_s3.bucket, "rel/app-1.0.1.zip", tmp_path / "o.zip").sha256 == _sha(v1)
    info = fresh.head(moto_s3.bucket, "rel/app-1.0.1.zip")
    assert (info.kind, info.original_size, info.ref_key) == ("delta", v1.stat().st_size, "rel/reference.bin")
    # delete of the other delta must still see this one's legacy ref_key and keep the reference
    assert fresh.delete(moto_s3.bucket, "rel/app-1.0.0.zip").reference_deleted is False
    assert "rel/reference.bin" in _keys(moto_s3)


def test_listing_is_logical_and_truthful(moto_s3: Any, store: DeltaStore, builds: Any, tmp_path: Path) -> None:
    v0, v1 = builds(0), builds(1)
    store.put(v0, moto_s3.bucket, "rel/app-1.0.0.zip")
    store.put(v1, moto_s3.bucket, "rel/app-1.0.1.zip")
    (tmp_path / "n.txt").write_text("x" * 10)
    store.put(tmp_path / "n.txt", moto_s3.bucket, "rel/sub/n.txt")
    moto_s3.client.put_object(Bucket=moto_s3.bucket, Key=".deltaglider/stats.json", Body=b"{}")
    listed = list(store.list(moto_s3.bucket))
    assert [o.key for o in listed] == ["rel/app-1.0.0.zip", "rel/app-1.0.1.zip", "rel/sub/n.txt"]
    assert [o.original_size for o in listed] == [v0.stat().st_size, v1.stat().st_size, 10]
    assert [o.kind for o in listed] == ["delta", "delta", "direct"]
    assert listed[1].sha256 == _sha(v1)
    quick = list(store.list(moto_s3.bucket, "rel/", recursive=False, with_metadata=False))
    assert [(o.key, o.original_size) for o in quick] == [("rel/app-1.0.0.zip", None), ("rel/app-1.0.1.zip", None)]


def test_listing_paginates_without_loss_or_repeat(moto_s3: Any, store: DeltaStore) -> None:
    for i in range(2150):
        moto_s3.client.put_object(Bucket=moto_s3.bucket, Key=f"logs/{i:05d}.log", Body=b"x")
    keys = [o.key for o in store.list(moto_s3.bucket, "logs/", with_metadata=False)]
    assert keys == [f"logs/{i:05d}.log" for i in range(2150)]


def test_delete_keeps_references_and_prune_removes_them_in_two_phases(
    moto_s3: Any, store: DeltaStore, builds: Any
) -> None:
    import datetime as dt

    store.put(builds(0), moto_s3.bucket, "rel/app-1.0.0.zip")
    store.put(builds(1), moto_s3.bucket, "rel/app-1.0.1.zip")
    first = store.delete(moto_s3.bucket, "rel/app-1.0.0.zip")
    assert first.deleted_keys == ("rel/app-1.0.0.zip.delta",) and not first.reference_deleted
    named = store.prune(moto_s3.bucket, grace=dt.timedelta(0))  # app-1.0.1's delta still names it
    assert (named.trashed, named.kept_recent) == ((), ())
    assert _keys(moto_s3) == ["rel/app-1.0.1.zip.delta", "rel/reference.bin"]
    last = store.delete(moto_s3.bucket, "rel/app-1.0.1.zip")
    assert last.deleted_keys == ("rel/app-1.0.1.zip.delta",) and not last.reference_deleted
    assert _keys(moto_s3) == ["rel/reference.bin"]  # a writer may be storing a delta against it right now
    with pytest.raises(NotFound):
        store.delete(moto_s3.bucket, "rel/app-1.0.1.zip")
    young = store.prune(moto_s3.bucket)  # default grace 24 h: the reference is too young to touch
    assert (young.trashed, young.kept_recent) == ((), ("rel/reference.bin",))
    dry = store.prune(moto_s3.bucket, grace=dt.timedelta(0), dry_run=True)
    assert dry.trashed == ("rel/reference.bin",) and _keys(moto_s3) == ["rel/reference.bin"]
    trashed = store.prune(moto_s3.bucket, grace=dt.timedelta(0))
    assert trashed.trashed == ("rel/reference.bin",)
    assert _keys(moto_s3) == [".deltaglider/trash/rel/reference.bin"]
    finished = store.prune(moto_s3.bucket, grace=dt.timedelta(0))
    assert (finished.purged, finished.restored) == ((".deltaglider/trash/rel/reference.bin",), ())
    assert _keys(moto_s3) == []


def test_verify_checks_without_keeping_files(moto_s3: Any, store: DeltaStore, builds: Any) -> None:
    v0 = builds(0)
    store.put(v0, moto_s3.bucket, "rel/app-1.0.0.zip")
    res = store.verify(moto_s3.bucket, "rel/app-1.0.0.zip")
    assert res.verified and res.sha256 == _sha(v0)
    assert not Path(res.path).exists()


def test_reference_is_never_overwritten(moto_s3: Any, builds: Any) -> None:
    """Two stores that both believe the prefix is empty: the second must not replace reference.bin."""
    a, b = DeltaStore(moto_s3.client), DeltaStore(moto_s3.client)
    a.put(builds(0), moto_s3.bucket, "rel/app-1.0.0.zip")
    etag = moto_s3.client.head_object(Bucket=moto_s3.bucket, Key="rel/reference.bin")["ETag"]
    loc = Location(moto_s3.bucket, "rel/app-1.0.1.zip")
    assert b.refs.create(loc, 0, builds(1), digest_file(builds(1))) is None
    assert moto_s3.client.head_object(Bucket=moto_s3.bucket, Key="rel/reference.bin")["ETag"] == etag


def test_large_files_go_multipart_and_references_stay_conditional(moto_s3: Any, tmp_path: Path) -> None:
    import os

    big = tmp_path / "big-1.0.tar"
    big.write_bytes(os.urandom(7 << 20))
    other = tmp_path / "big-1.1.tar"
    other.write_bytes(big.read_bytes()[:-100] + os.urandom(100))
    store = DeltaStore(moto_s3.client, StoreConfig(multipart_threshold=5 << 20))
    store.s3.part_size = 5 << 20  # two parts: 5 MiB + 2 MiB
    first = store.put(big, moto_s3.bucket, "big/big-1.0.tar")
    assert first.kind == "reference"
    head = moto_s3.client.head_object(Bucket=moto_s3.bucket, Key="big/reference.bin")
    assert head["ETag"].strip('"').endswith("-2")  # a multipart upload
    loc = Location(moto_s3.bucket, "big/big-1.1.tar")
    assert store.refs.create(loc, 0, other, digest_file(other)) is None  # conditional completion refused
    assert moto_s3.client.head_object(Bucket=moto_s3.bucket, Key="big/reference.bin")["ETag"] == head["ETag"]
    assert moto_s3.client.list_multipart_uploads(Bucket=moto_s3.bucket).get("Uploads", []) == []  # aborted
    res = store.get(moto_s3.bucket, "big/big-1.0.tar", tmp_path / "o.tar")
    assert res.sha256 == _sha(big)


def test_parallel_listing_yields_every_key_once(moto_s3: Any) -> None:
    from deltaglider_core.storage.listing import parallel_pages
    from deltaglider_core.transport.s3 import S3

    keys = ["top.txt", "a/1", "a/b/2", "a/b/c/3", "a/b/c/d/4", "a/b/c/d/e/5", "z/9"]
    keys += [f"wide/{i:02d}/f{j}" for i in range(12) for j in range(3)]
    keys += [f"flat/{i:04d}" for i in range(1100)]  # more than one LIST page in one folder
    for key in keys:
        moto_s3.client.put_object(Bucket=moto_s3.bucket, Key=key, Body=b"x")
    s3 = S3(moto_s3.client)
    for workers, depth in [(1, 1), (4, 2), (8, 3), (64, 6)]:
        seen = [
            o.key for page in parallel_pages(s3, moto_s3.bucket, "", workers=workers, depth=depth) for o in page.objects
        ]
        assert sorted(seen) == sorted(keys), (workers, depth)
    under = [o.key for page in parallel_pages(s3, moto_s3.bucket, "a/", workers=4) for o in page.objects]
    assert sorted(under) == sorted(k for k in keys if k.startswith("a/"))


def test_materialising_again_never_writes_through_a_shared_reference(moto_s3: Any, builds: Any, tmp_path: Path) -> None:
    """A scratch path may be a hard link to a decrypted reference that other encodes are reading: reusing
    that path for another reference must replace the link, never rewrite the shared file."""
    store = DeltaStore(moto_s3.client)
    first, second = builds(0), builds(0, seed=42, name="other")
    first_bytes, second_bytes = first.read_bytes(), second.read_bytes()
    store.put(first, moto_s3.bucket, "a/app-1.0.0.zip")
    store.put(second, moto_s3.bucket, "b/other-1.0.0.zip")
    scratch = tmp_path / "reference"
    shared = tmp_path / "another-encode-reading-it"
    store.refs.materialise(moto_s3.bucket, "a/reference.bin", hashlib.sha256(first_bytes).hexdigest(), scratch)
    os.link(scratch, shared)
    store.refs.materialise(moto_s3.bucket, "b/reference.bin", hashlib.sha256(second_bytes).hexdigest(), scratch)
    assert scratch.read_bytes() == second_bytes
    assert shared.read_bytes() == first_bytes
    assert first.read_bytes() == first_bytes and second.read_bytes() == second_bytes  # the user's files too
    again = tmp_path / "again"
    store.refs.materialise(moto_s3.bucket, "a/reference.bin", hashlib.sha256(first_bytes).hexdigest(), again)
    assert again.read_bytes() == first_bytes


def test_direct_object_with_altered_bytes_fails_verification(moto_s3: Any, store: DeltaStore, tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("release notes\n" * 50)
    store.put(notes, moto_s3.bucket, "rel/notes.txt")
    obj = moto_s3.client.get_object(Bucket=moto_s3.bucket, Key="rel/notes.txt")
    altered = obj["Body"].read().replace(b"release", b"RELEASE", 1)
    moto_s3.client.put_object(Bucket=moto_s3.bucket, Key="rel/notes.txt", Body=altered, Metadata=obj["Metadata"])
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(IntegrityError, match=f"s3://{moto_s3.bucket}/rel/notes.txt failed verification"):
        store.get(moto_s3.bucket, "rel/notes.txt", out)
    assert list(out.iterdir()) == []
    with pytest.raises(IntegrityError, match="failed verification"):
        store.verify(moto_s3.bucket, "rel/notes.txt")


def test_dg_max_ratio_from_the_environment(moto_s3: Any, builds: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DG_MAX_RATIO", "0.0001")
    strict = DeltaStore(moto_s3.client)
    assert strict.max_ratio == 0.0001
    strict.put(builds(0), moto_s3.bucket, "rel/app-1.0.0.zip")
    assert strict.put(builds(1), moto_s3.bucket, "rel/app-1.0.1.zip").kind == "direct"
    assert (
        DeltaStore(moto_s3.client, StoreConfig(max_ratio=0.9)).put(builds(2), moto_s3.bucket, "rel/app-1.0.2.zip").kind
        == "delta"
    )
    monkeypatch.setenv("DG_MAX_RATIO", "half")
    with pytest.raises(DeltaGliderError, match=r"DG_MAX_RATIO='half' is not a number: use a value in \(0, 1\]"):
        DeltaStore(moto_s3.client)
    monkeypatch.setenv("DG_MAX_RATIO", "3")
    with pytest.raises(DeltaGliderError, match=r"max_ratio=3.0 is out of range"):
        DeltaStore(moto_s3.client)


def test_unreadable_local_file_is_named(
    moto_s3: Any, store: DeltaStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = tmp_path / "app-1.0.0.zip"
    secret.write_bytes(b"PK")
    secret.chmod(0)
    real_access = os.access
    # Tests run as root in CI, which reads any file: ask the OS the way an unprivileged worker user would.
    monkeypatch.setattr(os, "access", lambda p, mode: False if Path(p) == secret else real_access(p, mode))
    with pytest.raises(InvalidLocation, match=f"Local file '{secret}' is not readable: check its permissions"):
        store.put(secret, moto_s3.bucket, "rel/app-1.0.0.zip")
    assert _keys(moto_s3) == []


def test_network_failure_on_upload_names_the_key(moto_s3: Any, tmp_path: Path) -> None:
    import boto3
    from botocore.config import Config
    from botocore.exceptions import EndpointConnectionError

    client = boto3.client("s3", region_name="us-east-1", config=Config(retries={"max_attempts": 1}))

    def unreachable(**kwargs: Any) -> None:
        raise EndpointConnectionError(endpoint_url="http://127.0.0.1:9/")

    client.meta.events.register("before-send.s3.PutObject", unreachable)
    notes = tmp_path / "notes.txt"
    notes.write_text("n")
    with pytest.raises(
        StorageError,
        match=rf"Could not upload s3://{moto_s3.bucket}/rel/notes.txt: .*Check the endpoint URL and the network",
    ):
        DeltaStore(client).put(notes, moto_s3.bucket, "rel/notes.txt")
    assert _keys(moto_s3) == []


def test_no_codec_at_all_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util
    import shutil

    from deltaglider_core.codec import xdelta3 as codec_module

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(CodecError, match=r"No VCDIFF codec found: run 'pip install pyxdelta'"):
        codec_module.default_codec()


@pytest.mark.parametrize("name", ["app é-1.0.0.zip", "app-日本-1.0.0.zip"])
def test_non_ascii_file_names_store_and_read_back(
    moto_s3: Any, store: DeltaStore, builds: Any, tmp_path: Path, name: str
) -> None:
    v0, v1 = builds(0), builds(1)
    first = tmp_path / name
    first.write_bytes(v0.read_bytes())
    second = tmp_path / name.replace("1.0.0", "1.0.1")
    second.write_bytes(v1.read_bytes())
    notes = tmp_path / "notes-é.txt"
    notes.write_text("café\n")
    for path in (first, second, notes):
        store.put(path, moto_s3.bucket, f"rel/{path.name}")
    meta = _meta(moto_s3, f"rel/{second.name}.delta")
    assert all(value.isascii() for value in meta.values())
    assert meta["dg-original-name"].startswith("=?UTF-8?B?")
    info = DeltaStore(moto_s3.client).head(moto_s3.bucket, f"rel/{second.name}")
    assert info.kind == "delta" and info.original_size == v1.stat().st_size
    listed = sorted(o.key for o in DeltaStore(moto_s3.client).list(moto_s3.bucket, "rel/"))
    assert listed == sorted(f"rel/{p.name}" for p in (first, second, notes))
    out = tmp_path / "out"
    out.mkdir()
    for path in (first, second, notes):
        got = DeltaStore(moto_s3.client).get(moto_s3.bucket, f"rel/{path.name}", out)
        assert Path(got.path).name == path.name and Path(got.path).read_bytes() == path.read_bytes()
    from deltaglider_core.storage.format import meta_get

    assert meta_get(_meta(moto_s3, "rel/reference.bin"), "source-name") == first.name


def test_parameter_errors_are_not_called_network_errors(moto_s3: Any, tmp_path: Path) -> None:
    from deltaglider_core.transport.s3 import S3

    path = tmp_path / "x.txt"
    path.write_text("x")
    with pytest.raises(StorageError) as err:
        S3(moto_s3.client).upload(path, moto_s3.bucket, "rel/x.txt", {"dg-note": "naïve"})
    assert "refused before sending" in str(err.value) and "network" not in str(err.value).split("This is")[0]
    assert "Check the endpoint URL" not in str(err.value)


def test_verified_only_when_a_hash_was_checked(
    moto_s3: Any, store: DeltaStore, builds: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    v0, v1 = builds(0), builds(1)
    store.put(v0, moto_s3.bucket, "rel/app-1.0.0.zip")
    store.put(v1, moto_s3.bucket, "rel/app-1.0.1.zip")
    key = "rel/app-1.0.1.zip.delta"
    obj = moto_s3.client.get_object(Bucket=moto_s3.bucket, Key=key)
    meta = {k: v for k, v in obj["Metadata"].items() if k != "dg-file-sha256"}
    moto_s3.client.put_object(Bucket=moto_s3.bucket, Key=key, Body=obj["Body"].read(), Metadata=meta)
    with caplog.at_level(logging.WARNING, logger="deltaglider_core"):
        got = DeltaStore(moto_s3.client).get(moto_s3.bucket, "rel/app-1.0.1.zip", tmp_path / "o.zip")
    assert Path(got.path).read_bytes() == v1.read_bytes()
    assert got.verified is False
    assert f"s3://{moto_s3.bucket}/{key} has no recorded SHA-256 (dg-file-sha256)" in caplog.text
    assert DeltaStore(moto_s3.client).get(moto_s3.bucket, "rel/app-1.0.0.zip", tmp_path / "v0.zip").verified


@pytest.mark.parametrize("first", ["empty", "unrelated"])
def test_a_poor_first_upload_does_not_poison_the_prefix(moto_s3: Any, builds: Any, tmp_path: Path, first: str) -> None:
    """Each upload from a fresh store, as separate Airflow tasks do: an empty or unrelated first file is
    replaced as the reference once it serves nothing, and the builds after it are small deltas again."""
    poison = tmp_path / "app-0.0.0.zip"
    if first == "empty":
        poison.write_bytes(b"")
    else:
        poison.write_bytes(builds(0, seed=99, name="other").read_bytes())
    versions = [builds(v) for v in range(4)]
    kinds = [DeltaStore(moto_s3.client).put(poison, moto_s3.bucket, f"rel/{poison.name}").kind]
    results = [DeltaStore(moto_s3.client).put(p, moto_s3.bucket, f"rel/{p.name}") for p in versions]
    kinds += [r.kind for r in results]
    if first == "empty":  # far smaller than the files: replaced at once
        assert kinds == ["reference", "reference", "delta", "delta", "delta"]
    else:  # the same size but unrelated: replaced by the second build it failed to serve
        assert kinds == ["reference", "direct", "reference", "delta", "delta"]
    assert results[-1].stored_size < versions[-1].stat().st_size // 4
    reader = DeltaStore(moto_s3.client)
    for path in [poison, *versions]:
        got = reader.get(moto_s3.bucket, f"rel/{path.name}", tmp_path / "o.zip")
        assert got.sha256 == _sha(path)


def test_prune_removes_a_rebase_orphan_but_not_the_reference_in_use(
    moto_s3: Any, store: DeltaStore, builds: Any, tmp_path: Path
) -> None:
    """Two migrations racing into one destination can each start a re-based reference; the loser's is named by
    no delta (issue #12, case 6). Stats report it; prune removes it and keeps what deltas name."""
    import datetime as dt

    from deltaglider_core.ops.stats import compute_stats

    v0, v1 = builds(0), builds(1)
    store.put(v0, moto_s3.bucket, "rel/app-1.0.0.zip")
    store.put(v1, moto_s3.bucket, "rel/app-1.0.1.zip")
    orphan = "rel/.dg-bases/0007/reference.bin"
    ref = moto_s3.client.get_object(Bucket=moto_s3.bucket, Key="rel/reference.bin")
    moto_s3.client.put_object(Bucket=moto_s3.bucket, Key=orphan, Body=ref["Body"].read(), Metadata=ref["Metadata"])
    stats = compute_stats(store, moto_s3.bucket)
    assert [o.key for o in stats.orphaned_references or ()] == [orphan]
    report = store.prune(moto_s3.bucket, grace=dt.timedelta(0))
    assert report.trashed == (orphan,)
    assert _keys(moto_s3) == [
        f".deltaglider/trash/{orphan}",
        "rel/app-1.0.0.zip.delta",
        "rel/app-1.0.1.zip.delta",
        "rel/reference.bin",
    ]
    got = DeltaStore(moto_s3.client).get(moto_s3.bucket, "rel/app-1.0.1.zip", tmp_path / "o.zip")
    assert got.sha256 == _sha(v1)


def test_strict_mode_refuses_objects_without_a_recorded_hash(moto_s3: Any, builds: Any, tmp_path: Path) -> None:
    """#28, finding 14: by default an object that records no SHA-256 is read unverified (and says so); a strict
    store refuses it, naming the object, and writes nothing."""
    b = moto_s3.bucket
    moto_s3.client.put_object(Bucket=b, Key="other/tool.bin", Body=b"written by another tool")
    DeltaStore(moto_s3.client).put(builds(0), b, "rel/app-1.0.0.zip")
    delta_key = "rel/app-1.0.0.zip.delta"
    meta = _meta(moto_s3, delta_key)
    del meta["dg-file-sha256"]
    moto_s3.client.copy_object(
        Bucket=b, Key=delta_key, CopySource={"Bucket": b, "Key": delta_key}, Metadata=meta,
        MetadataDirective="REPLACE",
    )  # fmt: skip
    lenient = DeltaStore(moto_s3.client)
    assert lenient.get(b, "other/tool.bin", tmp_path / "a").verified is False
    assert lenient.get(b, "rel/app-1.0.0.zip", tmp_path / "b").verified is False
    strict = DeltaStore(moto_s3.client, StoreConfig.from_env({}, strict=True))
    assert StoreConfig.from_env({"DG_STRICT": "1"}).strict is True
    for key, stored in (("other/tool.bin", "other/tool.bin"), ("rel/app-1.0.0.zip", delta_key)):
        out = tmp_path / "strict" / key.replace("/", "_")
        out.parent.mkdir(exist_ok=True)
        with pytest.raises(IntegrityError, match=rf"s3://{b}/{stored} records no SHA-256 .* strict"):
            strict.get(b, key, out)
    assert list((tmp_path / "strict").iterdir()) == []


def test_delete_removes_both_forms_of_a_key(moto_s3: Any, builds: Any, tmp_path: Path) -> None:
    """A put that failed half-way can leave a key's delta and its whole copy (found by the protocol model,
    test_protocol_model.py): a delete must remove both, or the older form reads again after it."""
    store = DeltaStore(moto_s3.client)
    store.put(builds(0), moto_s3.bucket, "rel/app-1.0.0.zip")
    store.put(builds(1), moto_s3.bucket, "rel/app.zip")  # the delta form
    whole = builds(2).read_bytes()
    moto_s3.client.put_object(
        Bucket=moto_s3.bucket, Key="rel/app.zip", Body=whole,
        Metadata={"dg-file-sha256": hashlib.sha256(whole).hexdigest(), "dg-file-size": str(len(whole))},
    )  # fmt: skip
    result = store.delete(moto_s3.bucket, "rel/app.zip")
    assert result.deleted_keys == ("rel/app.zip.delta", "rel/app.zip")
    assert [k for k in _keys(moto_s3) if k.startswith("rel/app.zip")] == []
    with pytest.raises(NotFound):
        DeltaStore(moto_s3.client).get(moto_s3.bucket, "rel/app.zip", tmp_path / "gone.zip")
