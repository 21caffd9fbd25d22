"""DeltaGlider 6.2.0's deltas of compressed archives read back here byte-identical.

The peer's stock xdelta3 takes the delta of the *decompressed* tarballs and recompresses on read with the
program's defaults (external compression, recorded in the VCDIFF application header). Tarballs made by
GNU tar + gzip/bzip2/xz read back exactly; a Python-made .tar.gz (which the peer cannot read back itself)
fails here with an error that says why, and leaves no file.
"""

from __future__ import annotations

import hashlib
import random
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from deltaglider_core.errors import CodecError, IntegrityError

pytestmark = pytest.mark.integration

FLAGS = {"tar.gz": "z", "tar.bz2": "j", "tar.xz": "J"}


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def gnu_tarballs(folder: Path, suffix: str, count: int) -> list[Path]:
    """``tar c?f`` of a source tree that changes a little each version (GNU tar piping to the program)."""
    program = {"z": "gzip", "j": "bzip2", "J": "xz"}[FLAGS[suffix]]
    if shutil.which("tar") is None or shutil.which(program) is None:
        pytest.skip(f"needs GNU tar and {program} to make the archives the peer compresses")
    tree = folder / "src"
    rng = random.Random(5)
    words = [rng.randbytes(6).hex() for _ in range(3000)]
    out = []
    for version in range(count):
        for m in range(12):
            r = random.Random(m)
            body = " ".join(r.choice(words) for _ in range(6000))
            if m % 4 == 0:
                body = body[:20000] + f"\nVERSION = '2.{version}'\n" + body[20000:]
            (tree / "pkg").mkdir(parents=True, exist_ok=True)
            (tree / "pkg" / f"mod{m}.py").write_text(body)
        path = folder / f"app-2.{version}.{suffix}"
        subprocess.run(["tar", f"c{FLAGS[suffix]}f", str(path), "-C", str(tree), "pkg"], check=True)
        out.append(path)
    return out


@pytest.mark.parametrize("suffix", sorted(FLAGS))
def test_deltaglider_deltas_of_gnu_tarballs_read_back_exactly(
    seaweed_s3: Any, peer: Any, tmp_path: Path, suffix: str
) -> None:
    files = gnu_tarballs(tmp_path / "in", suffix, 3)
    peer.upload(files, f"s3://{seaweed_s3.bucket}/tgz/")
    client, bucket = seaweed_s3.client, seaweed_s3.bucket
    for f in files[1:]:  # the peer stored deltas of the contents, so they are small
        head = client.head_object(Bucket=bucket, Key=f"tgz/{f.name}.delta")
        assert head["ContentLength"] < 0.05 * f.stat().st_size, (f.name, head["ContentLength"])
    store = seaweed_s3.store()
    (tmp_path / "out").mkdir()
    for f in files:
        got = store.get(bucket, f"tgz/{f.name}", tmp_path / "out")
        assert got.verified and got.kind == "delta"
        assert _sha(Path(got.path)) == _sha(f), f.name


def test_missing_program_is_named_and_nothing_is_written(
    seaweed_s3: Any, peer: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = gnu_tarballs(tmp_path / "in", "tar.gz", 2)
    peer.upload(files, f"s3://{seaweed_s3.bucket}/tgz/")
    store = seaweed_s3.store()
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    dest = tmp_path / "out" / files[1].name
    dest.parent.mkdir()
    with pytest.raises(CodecError) as err:
        store.get(seaweed_s3.bucket, f"tgz/{files[1].name}", dest)
    assert "'gzip' program" in str(err.value) and "apt-get install gzip" in str(err.value)
    assert f"s3://{seaweed_s3.bucket}/tgz/{files[1].name}.delta" in str(err.value)
    assert list(dest.parent.iterdir()) == []


def test_python_made_gzip_delta_fails_clearly_like_the_peer_and_leaves_no_file(
    seaweed_s3: Any, peer: Any, tmp_path: Path
) -> None:
    from tests.unit.test_gzip_content import python_tgz

    files = [python_tgz(tmp_path / "in", v) for v in range(2)]
    peer.upload(files, f"s3://{seaweed_s3.bucket}/sdist/")
    with pytest.raises(Exception):  # noqa: B017 - the peer's own failure on its own object (SHA-256 mismatch)
        peer.download(f"s3://{seaweed_s3.bucket}/sdist/{files[1].name}", tmp_path / "peer-out")
    dest = tmp_path / "out"
    dest.mkdir()
    with pytest.raises(IntegrityError) as err:
        seaweed_s3.store().get(seaweed_s3.bucket, f"sdist/{files[1].name}", dest)
    message = str(err.value)
    assert f"s3://{seaweed_s3.bucket}/sdist/{files[1].name}.delta" in message
    assert "'gzip -c'" in message and "DeltaGlider cannot read it back either" in message
    assert list(dest.iterdir()) == []
