"""Buckets written by DeltaGlider 6.2.0 read back byte-identical here, and the other way round."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
from deltaglider_core import DeltaStore

pytestmark = pytest.mark.integration


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_deltaglider_writes_we_read(seaweed_s3: Any, peer: Any, builds: Any, tmp_path: Path) -> None:
    """Six versions by DeltaGlider 6.2.0 on a stock xdelta3 (LZMA-secondary deltas), all read back here."""
    versions = [builds(v) for v in range(6)]
    notes = tmp_path / "notes.txt"
    notes.write_text("release notes\n")
    peer.upload([*versions, notes], f"s3://{seaweed_s3.bucket}/rel/app/")
    raw = seaweed_s3.client.list_objects_v2(Bucket=seaweed_s3.bucket)["Contents"]
    assert "rel/app/reference.bin" in {o["Key"] for o in raw}
    store = seaweed_s3.store()
    listed = {o.key: o for o in store.list(seaweed_s3.bucket, "rel/")}
    assert sorted(listed) == sorted(f"rel/app/{p.name}" for p in [*versions, notes])
    out = tmp_path / "out"
    out.mkdir()
    for path in [*versions, notes]:
        res = store.get(seaweed_s3.bucket, f"rel/app/{path.name}", out)
        assert res.verified
        assert Path(res.path).read_bytes() == path.read_bytes()
        assert listed[f"rel/app/{path.name}"].original_size == path.stat().st_size
    assert listed[f"rel/app/{versions[1].name}"].kind == "delta"


def test_we_write_deltaglider_reads(seaweed_s3: Any, peer: Any, builds: Any, tmp_path: Path) -> None:
    # Ten drifting versions force a re-based reference under .dg-bases/, which the peer must resolve.
    versions = [builds(v) for v in range(10)]
    store = seaweed_s3.store()
    results = [store.put(p, seaweed_s3.bucket, f"rel/app/{p.name}") for p in versions]
    assert any(r.rebased for r in results), [r.to_dict() for r in results]
    assert any(r.kind == "delta" and ".dg-bases/" in (r.ref_key or "") for r in results)
    notes = tmp_path / "notes.txt"
    notes.write_text("direct upload\n")
    store.put(notes, seaweed_s3.bucket, "rel/app/notes.txt")
    for path in [*versions, notes]:
        dest = tmp_path / f"peer-{path.name}"
        peer.download(f"s3://{seaweed_s3.bucket}/rel/app/{path.name}", dest)
        assert _sha(dest) == _sha(path), path.name


def test_peer_upload_after_ours_shares_the_reference(seaweed_s3: Any, peer: Any, builds: Any, tmp_path: Path) -> None:
    v0, v1 = builds(0), builds(1)
    seaweed_s3.store().put(v0, seaweed_s3.bucket, f"rel/app/{v0.name}")
    peer.upload([v1], f"s3://{seaweed_s3.bucket}/rel/app/")
    meta = seaweed_s3.client.head_object(Bucket=seaweed_s3.bucket, Key=f"rel/app/{v1.name}.delta")["Metadata"]
    assert meta["dg-ref-key"] == "rel/app/reference.bin"
    res = seaweed_s3.store().get(seaweed_s3.bucket, f"rel/app/{v1.name}", tmp_path / "o.zip")
    assert res.sha256 == _sha(v1)


def test_migrating_what_deltaglider_wrote(seaweed_s3: Any, peer: Any, builds: Any, tmp_path: Path) -> None:
    from deltaglider_core.ops.migrate import Migration

    versions = [builds(v) for v in range(6)]
    peer.upload(versions, f"s3://{seaweed_s3.bucket}/legacy/app/")
    client, bucket = seaweed_s3.client, seaweed_s3.bucket
    before = {o["Key"]: o["ETag"] for o in client.list_objects_v2(Bucket=bucket, Prefix="legacy/")["Contents"]}

    def migrate() -> Any:
        return Migration(DeltaStore(client), None, bucket, "legacy/", bucket, "new/", preserve_prefix=False).run()

    first = migrate()
    assert (first.migrated, first.failed, first.internal) == (6, 0, 1)
    store = DeltaStore(client)
    assert sorted(o.key for o in store.list(bucket, "new/")) == sorted(f"new/app/{p.name}" for p in versions)
    for path in versions:
        assert store.get(bucket, f"new/app/{path.name}", tmp_path / path.name).sha256 == _sha(path)
    after = {o["Key"]: o["ETag"] for o in client.list_objects_v2(Bucket=bucket, Prefix="legacy/")["Contents"]}
    assert after == before
    again = migrate()
    assert (again.migrated, again.skipped, again.failed) == (0, 6, 0)


def test_non_ascii_names_we_write_deltaglider_reads(seaweed_s3: Any, peer: Any, builds: Any, tmp_path: Path) -> None:
    """DeltaGlider 6.2.0 cannot store these names itself (non-ASCII metadata); what we store, it reads."""
    files = []
    for version, name in enumerate(["app-日本-1.0.0.zip", "app-日本-1.0.1.zip"]):
        path = tmp_path / name
        path.write_bytes(builds(version).read_bytes())
        files.append(path)
    notes = tmp_path / "notes-é.txt"
    notes.write_text("café\n")
    store = seaweed_s3.store()
    kinds = [store.put(p, seaweed_s3.bucket, f"intl/{p.name}").kind for p in [*files, notes]]
    assert kinds == ["reference", "delta", "direct"]
    for path in [*files, notes]:
        dest = tmp_path / f"peer-{path.name}"
        peer.download(f"s3://{seaweed_s3.bucket}/intl/{path.name}", dest)
        assert _sha(dest) == _sha(path), path.name
        got = seaweed_s3.store().get(seaweed_s3.bucket, f"intl/{path.name}", tmp_path / "ours")
        assert got.sha256 == _sha(path)


def test_deltaglider_reads_every_gzip_object_written_in_its_compatibility_mode(
    seaweed_s3: Any, peer: Any, tmp_path: Path
) -> None:
    """Python-made .tar.gz files: with deltaglider_compatible they are stored whole, so the peer reads each
    back byte-identical; without it the content delta is refused by the peer's SHA-256 check (it never
    returns wrong bytes), while we read both kinds from one prefix."""
    from tests.unit.test_gzip_content import python_tgz

    files = [python_tgz(tmp_path / "in", v) for v in range(3)]
    compatible = seaweed_s3.store(deltaglider_compatible=True)
    for f in files:
        compatible.put(f, seaweed_s3.bucket, f"gz/{f.name}")
    for f in files:
        dest = tmp_path / f"peer-{f.name}"
        peer.download(f"s3://{seaweed_s3.bucket}/gz/{f.name}", dest)
        assert _sha(dest) == _sha(f), f.name
    first, newer = python_tgz(tmp_path / "in", 3), python_tgz(tmp_path / "in", 4)
    ours = seaweed_s3.store()
    assert ours.put(first, seaweed_s3.bucket, f"gz/{first.name}").kind == "reference"  # same prefix
    put = ours.put(newer, seaweed_s3.bucket, f"gz/{newer.name}")
    meta = seaweed_s3.client.head_object(Bucket=seaweed_s3.bucket, Key=put.stored_key)["Metadata"]
    assert meta.get("dg-content-encoding") == "gzip"
    with pytest.raises(Exception):  # noqa: B017 - the peer's own failure (SHA-256 mismatch), not ours
        peer.download(f"s3://{seaweed_s3.bucket}/gz/{newer.name}", tmp_path / "peer-newer")
    assert not (tmp_path / "peer-newer").exists() or _sha(tmp_path / "peer-newer") == _sha(newer)
    for f in [*files, first, newer]:
        got = seaweed_s3.store().get(seaweed_s3.bucket, f"gz/{f.name}", tmp_path / f"ours-{f.name}")
        assert Path(got.path).read_bytes() == f.read_bytes()


def test_deltaglider_reads_every_zip_written_in_its_compatibility_mode(
    seaweed_s3: Any, peer: Any, tmp_path: Path
) -> None:
    """Wheels whose members (and gzip files inside them) change a little: with deltaglider_compatible they are
    byte-level deltas the peer reads back exactly; by default they are content-level deltas, which the peer
    refuses by its own SHA-256 check (never wrong bytes) and we read back from the same prefix."""
    from tests.unit.test_zip_content import wheel

    files = [wheel(tmp_path / "in", v) for v in range(4)]
    compatible = seaweed_s3.store(deltaglider_compatible=True)
    for f in files[:2]:
        compatible.put(f, seaweed_s3.bucket, f"whl/{f.name}")
    ours = seaweed_s3.store()
    puts = [ours.put(f, seaweed_s3.bucket, f"whl/{f.name}") for f in files[2:]]
    client = seaweed_s3.client
    encodings = [
        client.head_object(Bucket=seaweed_s3.bucket, Key=f"whl/{f.name}.delta")["Metadata"].get("dg-content-encoding")
        for f in files
    ]
    assert encodings == [None, None, "zip", "zip"], encodings
    assert all(p.kind == "delta" for p in puts)
    for f in files[:2]:
        dest = tmp_path / f"peer-{f.name}"
        peer.download(f"s3://{seaweed_s3.bucket}/whl/{f.name}", dest)
        assert _sha(dest) == _sha(f), f.name
    with pytest.raises(Exception):  # noqa: B017 - the peer's own failure (SHA-256 mismatch), not ours
        peer.download(f"s3://{seaweed_s3.bucket}/whl/{files[3].name}", tmp_path / "peer-newer")
    assert not (tmp_path / "peer-newer").exists() or _sha(tmp_path / "peer-newer") == _sha(files[3])
    for f in files:
        got = seaweed_s3.store().get(seaweed_s3.bucket, f"whl/{f.name}", tmp_path / f"ours-{f.name}")
        assert Path(got.path).read_bytes() == f.read_bytes()
