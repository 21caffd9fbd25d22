"""sync_up / sync_down decide "changed" by size, then SHA-256 where stored, else modification time."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from deltaglider_core import DeltaStore, InvalidLocation
from deltaglider_core.ops.sync import sync_down, sync_up


def _write(path: Path, data: bytes, mtime: float | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


def test_sync_up_resends_a_file_changed_in_place_with_the_same_size(moto_s3: Any, tmp_path: Path) -> None:
    store = DeltaStore(moto_s3.client)
    src = tmp_path / "src"
    _write(src / "a.txt", b"version one")
    _write(src / "b.txt", b"stays the same")
    first = sync_up(store, src, moto_s3.bucket, "mirror")
    assert first.transferred == ("mirror/a.txt", "mirror/b.txt")
    _write(src / "a.txt", b"version two", mtime=1_000_000_000)  # same size, older mtime: only the hash can tell
    second = sync_up(store, src, moto_s3.bucket, "mirror")
    assert second.transferred == ("mirror/a.txt",) and second.unchanged == 1
    out = tmp_path / "o.txt"
    store.get(moto_s3.bucket, "mirror/a.txt", out)
    assert out.read_bytes() == b"version two"
    assert sync_up(store, src, moto_s3.bucket, "mirror").transferred == ()


def test_sync_down_refetches_what_changed_remotely(moto_s3: Any, tmp_path: Path) -> None:
    store = DeltaStore(moto_s3.client)
    src = tmp_path / "src"
    _write(src / "a.txt", b"version one")
    sync_up(store, src, moto_s3.bucket, "mirror")
    dest = tmp_path / "dest"
    assert sync_down(store, moto_s3.bucket, "mirror", dest).transferred == ("mirror/a.txt",)
    _write(src / "a.txt", b"version two")
    sync_up(store, src, moto_s3.bucket, "mirror")
    again = sync_down(store, moto_s3.bucket, "mirror", dest)
    assert again.transferred == ("mirror/a.txt",)
    assert (dest / "a.txt").read_bytes() == b"version two"
    assert sync_down(store, moto_s3.bucket, "mirror", dest).transferred == ()


def test_without_a_stored_hash_the_newer_side_wins(moto_s3: Any, tmp_path: Path) -> None:
    """Objects written by other tools carry no dg-file-sha256: modification time decides, in the right direction."""
    store = DeltaStore(moto_s3.client)
    moto_s3.client.put_object(Bucket=moto_s3.bucket, Key="plain/old-local.txt", Body=b"remote!")
    moto_s3.client.put_object(Bucket=moto_s3.bucket, Key="plain/new-local.txt", Body=b"remote!")
    dest = tmp_path / "dest"
    _write(dest / "old-local.txt", b"local!!", mtime=1_000_000_000)  # 2001: the object is newer
    _write(dest / "new-local.txt", b"local!!", mtime=4_000_000_000)  # 2096: the local copy is newer
    down = sync_down(store, moto_s3.bucket, "plain", dest)
    assert down.transferred == ("plain/old-local.txt",) and down.unchanged == 1
    assert (dest / "old-local.txt").read_bytes() == b"remote!"
    assert (dest / "new-local.txt").read_bytes() == b"local!!"
    up = sync_up(store, dest, moto_s3.bucket, "plain")
    # newer locally; the other was just stamped with the object's time
    assert up.transferred == ("plain/new-local.txt",)


def test_sync_source_must_be_a_directory(moto_s3: Any, tmp_path: Path) -> None:
    store = DeltaStore(moto_s3.client)
    afile = _write(tmp_path / "file.txt", b"x")
    with pytest.raises(InvalidLocation, match=f"Sync source '{afile}' is not a directory: check the path"):
        sync_up(store, afile, moto_s3.bucket, "mirror")
    with pytest.raises(InvalidLocation, match="is not a directory"):
        sync_up(store, tmp_path / "missing", moto_s3.bucket, "mirror")


def test_folder_markers_are_folders_not_files(moto_s3: Any, tmp_path: Path) -> None:
    """S3 consoles create zero-byte ``dir/`` keys (#28, finding 6): listings, downloads and syncs pass over
    them instead of failing on them, including a marker at the prefix itself."""
    import logging

    from deltaglider_core.ops.transfer import download_files

    b = moto_s3.bucket
    for key, body in (("m1/", b""), ("m1/dir/", b""), ("m1/dir/a.txt", b"A"), ("m1/b.txt", b"B")):
        moto_s3.client.put_object(Bucket=b, Key=key, Body=body)
    store = DeltaStore(moto_s3.client)
    assert sorted(o.key for o in store.list(b, "m1/")) == ["m1/b.txt", "m1/dir/a.txt"]
    report = sync_down(store, b, "m1/", tmp_path / "synced")
    assert sorted(report.transferred) == ["m1/b.txt", "m1/dir/a.txt"]
    assert (tmp_path / "synced" / "dir" / "a.txt").read_bytes() == b"A"
    summary = download_files(store, b, "m1/", str(tmp_path / "down"), log=logging.getLogger("t"))
    assert summary["refused"] == [] and (tmp_path / "down" / "b.txt").read_bytes() == b"B"
    assert sorted(p.name for p in (tmp_path / "down").rglob("*") if p.is_file()) == ["a.txt", "b.txt"]
