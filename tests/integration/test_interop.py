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
    versions = [builds(v) for v in range(3)]
    notes = tmp_path / "notes.txt"
    notes.write_text("release notes\n")
    peer.upload([*versions, notes], f"s3://{seaweed_s3.bucket}/rel/app/")
    raw = seaweed_s3.client.list_objects_v2(Bucket=seaweed_s3.bucket)["Contents"]
    assert "rel/app/reference.bin" in {o["Key"] for o in raw}
    store = DeltaStore(seaweed_s3.client)
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
    store = DeltaStore(seaweed_s3.client)
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
    DeltaStore(seaweed_s3.client).put(v0, seaweed_s3.bucket, f"rel/app/{v0.name}")
    peer.upload([v1], f"s3://{seaweed_s3.bucket}/rel/app/")
    meta = seaweed_s3.client.head_object(Bucket=seaweed_s3.bucket, Key=f"rel/app/{v1.name}.delta")["Metadata"]
    assert meta["dg-ref-key"] == "rel/app/reference.bin"
    res = DeltaStore(seaweed_s3.client).get(seaweed_s3.bucket, f"rel/app/{v1.name}", tmp_path / "o.zip")
    assert res.sha256 == _sha(v1)
