"""A local file that changes after it was hashed is never stored under the old hash (#28, finding 4), on a
real SeaweedFS: the upload carries the hashed MD5 (Content-MD5, per part for multipart) and the server refuses
other bytes; a delta is written only while the file is still the one hashed (its stat stamp)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from deltaglider_core import SourceChanged
from deltaglider_core.storage import write_path
from deltaglider_core.support.digest import FileDigest

pytestmark = pytest.mark.integration


def _keys(env: Any) -> list[str]:
    return sorted(o["Key"] for o in env.client.list_objects_v2(Bucket=env.bucket).get("Contents", []))


@pytest.fixture
def changed_after_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Forces the interleaving: the file is rewritten in place (same size) right after put() hashed it."""
    real = write_path.digest_file

    def hashed_then_changed(path: Path, *args: Any) -> FileDigest:
        digest = real(path, *args)
        with open(path, "r+b") as f:
            first = f.read(1)
            f.seek(0)
            f.write(bytes([first[0] ^ 0xFF]))
        return digest

    monkeypatch.setattr(write_path, "digest_file", hashed_then_changed)


@pytest.mark.usefixtures("changed_after_hashing")
def test_a_direct_upload_of_changed_bytes_is_refused_by_the_server(seaweed_s3: Any, tmp_path: Path) -> None:
    src = tmp_path / "build.log"
    src.write_bytes(b"log line\n" * 200_000)  # 1.8 MB: over the fast path's 1 MiB, one boto3 PUT
    with pytest.raises(SourceChanged, match=r"build\.log changed while it was uploaded"):
        seaweed_s3.store().put(src, seaweed_s3.bucket, "logs/build.log")
    assert _keys(seaweed_s3) == []


@pytest.mark.usefixtures("changed_after_hashing")
def test_a_small_direct_upload_is_checked_before_the_fast_path_sends_it(seaweed_s3: Any, tmp_path: Path) -> None:
    src = tmp_path / "small.log"
    src.write_bytes(b"log line\n" * 1000)
    with pytest.raises(SourceChanged, match=r"small\.log changed before it was uploaded"):
        seaweed_s3.store().put(src, seaweed_s3.bucket, "logs/small.log")
    assert _keys(seaweed_s3) == []


@pytest.mark.usefixtures("changed_after_hashing")
def test_a_multipart_upload_of_changed_bytes_is_refused_part_by_part(seaweed_s3: Any, tmp_path: Path) -> None:
    src = tmp_path / "big.log"
    src.write_bytes(b"0123456789abcdef" * (3 << 16))  # 3 MiB in 1 MiB parts
    store = seaweed_s3.store(multipart_threshold=1 << 20, memory_budget_mb=64)
    store.s3.part_size = 1 << 20
    with pytest.raises(SourceChanged, match=r"big\.log changed while it was uploaded"):
        store.put(src, seaweed_s3.bucket, "logs/big.log")
    assert _keys(seaweed_s3) == []
    assert seaweed_s3.client.list_multipart_uploads(Bucket=seaweed_s3.bucket).get("Uploads", []) == []


@pytest.mark.usefixtures("changed_after_hashing")
def test_a_first_archive_that_changed_never_becomes_the_reference(seaweed_s3: Any, builds: Any, tmp_path: Path) -> None:
    src = tmp_path / "app-1.0.0.zip"
    src.write_bytes(builds(0).read_bytes())
    with pytest.raises(SourceChanged, match=r"app-1\.0\.0\.zip changed while it was uploaded"):
        seaweed_s3.store().put(src, seaweed_s3.bucket, "rel/app-1.0.0.zip")
    assert [k for k in _keys(seaweed_s3) if not k.startswith(".deltaglider/")] == []


def test_a_delta_is_not_written_for_a_file_that_changed_while_it_was_encoded(
    seaweed_s3: Any, builds: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = seaweed_s3.store()
    store.put(builds(0), seaweed_s3.bucket, "rel/app-1.0.0.zip")
    src = tmp_path / "app-1.0.1.zip"
    src.write_bytes(builds(1).read_bytes())
    real = store.codec.encode

    def encode_while_it_changes(source: Path, target: Path, out: Path, *args: Any, **kwargs: Any) -> str:
        if target == src:
            with open(src, "ab") as f:
                f.write(b"appended by a producer that is not finished")
        return real(source, target, out, *args, **kwargs)

    monkeypatch.setattr(store.codec, "encode", encode_while_it_changes)
    with pytest.raises(SourceChanged, match=r"app-1\.0\.1\.zip changed while it was encoded"):
        store.put(src, seaweed_s3.bucket, "rel/app-1.0.1.zip")
    assert [k for k in _keys(seaweed_s3) if "1.0.1" in k] == []
    assert seaweed_s3.store().get(seaweed_s3.bucket, "rel/app-1.0.0.zip", tmp_path / "v0.zip").verified


def test_a_file_that_grew_after_hashing_is_not_uploaded_at_all(
    seaweed_s3: Any, builds: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A size change needs no server to notice: the put stops before its first byte goes up."""
    real = write_path.digest_file

    def hashed_then_grown(path: Path, *args: Any) -> FileDigest:
        digest = real(path, *args)
        with open(path, "ab") as f:
            f.write(b"more")
        return digest

    monkeypatch.setattr(write_path, "digest_file", hashed_then_grown)
    src = tmp_path / "app-1.0.0.zip"
    src.write_bytes(builds(0).read_bytes())
    with pytest.raises(SourceChanged, match=r"app-1\.0\.0\.zip changed before it was uploaded"):
        seaweed_s3.store().put(src, seaweed_s3.bucket, "rel/app-1.0.0.zip")
    assert [k for k in _keys(seaweed_s3) if not k.startswith(".deltaglider/")] == []
