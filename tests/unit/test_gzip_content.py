"""Content-level deltas of gzip files: small deltas for Python-made .tar.gz series, the exact bytes back,
byte-level deltas where zlib cannot reproduce the stream (GNU gzip), a clear error and no file when the
rebuild parameters are tampered with, and nothing DeltaGlider 6 cannot read in its compatibility mode."""

from __future__ import annotations

import gzip
import io
import random
import struct
import subprocess
import tarfile
import zlib
from pathlib import Path
from typing import Any

import pytest
from deltaglider_core import DeltaStore, StoreConfig
from deltaglider_core.content import gzip_content
from deltaglider_core.errors import CodecError, IntegrityError


def _tar(version: int, members: int = 30, size: int = 40_000) -> bytes:
    """An uncompressed tarball whose members change a little each version (like an sdist's sources)."""
    rng = random.Random(11)
    words = [rng.randbytes(rng.randint(3, 9)).hex() for _ in range(2000)]
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for m in range(members):
            r = random.Random(m)
            body = " ".join(r.choice(words) for _ in range(size // 8)).encode()[:size]
            if m % 10 == 0:  # every 10th member gets a version line in its middle, as a release bump does
                body = body[: size // 2] + f"\n__version__ = '1.0.{version}'\n".encode() + body[size // 2 :]
            info = tarfile.TarInfo(f"pkg-1.0.{version}/src/module_{m:02d}.py")
            info.size, info.mtime = len(body), 1_700_000_000
            tar.addfile(info, io.BytesIO(body))
    return out.getvalue()


def python_tgz(folder: Path, version: int, level: int = 9) -> Path:
    """As setuptools/build write sdists: Python's gzip, the file name and a fixed mtime in the header."""
    path = folder / f"pkg-1.0.{version}.tar.gz"
    folder.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as raw, gzip.GzipFile(path.name[:-3], "wb", level, raw, mtime=1_700_000_000 + version) as gz:
        gz.write(_tar(version))
    return path


def test_python_gzip_series_is_stored_as_small_content_deltas_and_read_back_exactly(
    moto_s3: Any, tmp_path: Path
) -> None:
    store = DeltaStore(moto_s3.client)
    files = [python_tgz(tmp_path / "in", v) for v in range(4)]
    results = [store.put(f, moto_s3.bucket, f"sdists/{f.name}") for f in files]
    assert [r.kind for r in results] == ["reference", "delta", "delta", "delta"]
    for f, r in zip(files[1:], results[1:], strict=True):
        head = moto_s3.client.head_object(Bucket=moto_s3.bucket, Key=r.stored_key)["Metadata"]
        assert head["dg-content-encoding"] == "gzip"
        assert gzip_content.Recipe.from_meta(head["dg-gzip-rebuild"]).level == 9
        assert r.stored_size < 0.08 * f.stat().st_size, (r.stored_size, f.stat().st_size)  # content delta is small
    for f in files:
        got = store.get(moto_s3.bucket, f"sdists/{f.name}", tmp_path / f"out-{f.name}")
        assert Path(got.path).read_bytes() == f.read_bytes() and got.verified


def test_the_byte_level_delta_would_have_been_poor(moto_s3: Any, tmp_path: Path) -> None:
    """The reason for the content path: DeltaGlider-compatible, the series is stored whole (its xdelta3 cannot
    decode deltas of gzip files), far larger, with no metadata DeltaGlider 6 could not follow."""
    compatible = DeltaStore(moto_s3.client, StoreConfig(deltaglider_compatible=True))
    files = [python_tgz(tmp_path / "in", v) for v in range(3)]
    results = [compatible.put(f, moto_s3.bucket, f"compat/{f.name}") for f in files]
    assert [r.kind for r in results] == ["direct"] * 3  # what DeltaGlider 6 reads back
    listed = moto_s3.client.list_objects_v2(Bucket=moto_s3.bucket, Prefix="compat/")["Contents"]
    for obj in listed:
        meta = moto_s3.client.head_object(Bucket=moto_s3.bucket, Key=obj["Key"])["Metadata"]
        assert "dg-content-encoding" not in meta
    content_store = DeltaStore(moto_s3.client)
    smart = [content_store.put(f, moto_s3.bucket, f"content/{f.name}") for f in files]
    assert sum(r.stored_size for r in smart[1:]) * 5 < sum(r.stored_size for r in results[1:])
    for f in files:
        out = tmp_path / f"c-{f.name}"
        assert Path(compatible.get(moto_s3.bucket, f"compat/{f.name}", out).path).read_bytes() == f.read_bytes()


def _gnu_series(tmp_path: Path, count: int) -> list[Path]:
    if gzip_content.gnu_gzip() is None:
        pytest.skip("needs the GNU gzip program, whose deflate (not zlib's) made these files")
    files = []
    for v in range(count):
        raw = tmp_path / f"tar-{v}" / f"tool-1.0.{v}.tar"
        raw.parent.mkdir()
        raw.write_bytes(_tar(v))
        subprocess.run(["gzip", "-n", str(raw)], check=True)  # as ``tar czf`` does: GNU gzip at level 6
        files.append(raw.with_name(raw.name + ".gz"))
    return files


def test_gnu_gzip_files_are_content_deltas_rebuilt_by_the_gzip_program(moto_s3: Any, tmp_path: Path) -> None:
    files = _gnu_series(tmp_path, 3)
    store = DeltaStore(moto_s3.client)
    results = [store.put(f, moto_s3.bucket, f"gnu/{f.name}") for f in files]
    for f, r in zip(files[1:], results[1:], strict=True):
        meta = moto_s3.client.head_object(Bucket=moto_s3.bucket, Key=r.stored_key)["Metadata"]
        recipe = gzip_content.Recipe.from_meta(meta["dg-gzip-rebuild"])
        assert (recipe.level, recipe.mem_level) == (6, gzip_content.GNU)
        assert recipe.zlib_version == gzip_content.gnu_gzip()  # the program's version, named if a read differs
        assert r.stored_size < 0.08 * f.stat().st_size
    for f in files:
        got = store.get(moto_s3.bucket, f"gnu/{f.name}", tmp_path / f"o-{f.name}")
        assert Path(got.path).read_bytes() == f.read_bytes()


def test_without_the_gzip_program_a_gnu_content_delta_names_it_and_writes_nothing(
    moto_s3: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = _gnu_series(tmp_path, 2)
    store = DeltaStore(moto_s3.client)
    for f in files:
        store.put(f, moto_s3.bucket, f"gnu/{f.name}")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    gzip_content.gnu_gzip.cache_clear()
    try:
        dest = tmp_path / "dest.tar.gz"
        with pytest.raises(
            CodecError, match=r"gnu/tool-1.0.1.tar.gz.delta cannot be rebuilt here.*apt-get install gzip"
        ):
            store.get(moto_s3.bucket, f"gnu/{files[1].name}", dest)
        assert not dest.exists() and list(tmp_path.glob("*dest*")) == []
        # Written without the program, the same file takes the byte-level path and reads back anywhere.
        store.put(files[0], moto_s3.bucket, f"nogzip/{files[0].name}")
        put = store.put(files[1], moto_s3.bucket, f"nogzip/{files[1].name}")
        meta = moto_s3.client.head_object(Bucket=moto_s3.bucket, Key=put.stored_key)["Metadata"]
        assert "dg-content-encoding" not in meta
        got = store.get(moto_s3.bucket, f"nogzip/{files[1].name}", tmp_path / "o.tar.gz")
        assert Path(got.path).read_bytes() == files[1].read_bytes()
    finally:
        monkeypatch.undo()
        gzip_content.gnu_gzip.cache_clear()


def test_a_tampered_rebuild_parameter_is_an_integrity_error_and_writes_nothing(moto_s3: Any, tmp_path: Path) -> None:
    store = DeltaStore(moto_s3.client)
    files = [python_tgz(tmp_path / "in", v) for v in range(2)]
    for f in files:
        store.put(f, moto_s3.bucket, f"t/{f.name}")
    key = f"t/{files[1].name}.delta"
    meta = moto_s3.client.head_object(Bucket=moto_s3.bucket, Key=key)["Metadata"]
    recipe = gzip_content.Recipe.from_meta(meta["dg-gzip-rebuild"])
    tampered = gzip_content.Recipe(recipe.header, 1, recipe.mem_level, recipe.strategy, recipe.zlib_version)
    meta["dg-gzip-rebuild"] = tampered.to_meta()
    moto_s3.client.copy_object(Bucket=moto_s3.bucket, Key=key, CopySource={"Bucket": moto_s3.bucket, "Key": key},
                               Metadata=meta, MetadataDirective="REPLACE")  # fmt: skip
    dest = tmp_path / "dest.tar.gz"
    with pytest.raises(IntegrityError, match=r"rebuilt file does not match its SHA-256.*level 1"):
        DeltaStore(moto_s3.client).get(moto_s3.bucket, f"t/{files[1].name}", dest)
    assert not dest.exists() and list(tmp_path.glob("*dest*")) == []  # no partial file beside it either


def _member(body: bytes, flags: int = 0, extra: bytes = b"", name: bytes = b"", comment: bytes = b"") -> bytes:
    head = b"\x1f\x8b\x08" + bytes([flags]) + struct.pack("<I", 0) + b"\x00\x03"
    if flags & 4:
        head += struct.pack("<H", len(extra)) + extra
    if flags & 8:
        head += name + b"\x00"
    if flags & 16:
        head += comment + b"\x00"
    if flags & 2:
        head += struct.pack("<H", zlib.crc32(head) & 0xFFFF)
    deflater = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    stream = deflater.compress(body) + deflater.flush()
    return head + stream + struct.pack("<II", zlib.crc32(body), len(body))


@pytest.mark.parametrize(
    "fields",
    [{}, {"flags": 8, "name": b"a.tar"}, {"flags": 4 | 8 | 16 | 2, "extra": b"AB\x02\x00xy", "name": b"n",
                                          "comment": b"made by hand"}],
)  # fmt: skip
def test_header_fields_are_kept_byte_for_byte(tmp_path: Path, fields: dict[str, Any]) -> None:
    body = b"content " * 5000
    path = tmp_path / "x.gz"
    path.write_bytes(_member(body, **fields))
    found = gzip_content.inflate(path, tmp_path / "c")
    assert found is not None and (tmp_path / "c").read_bytes() == body
    recipe = gzip_content.find_recipe(path, tmp_path / "c", *found)
    assert recipe is not None  # (level 6 or any level whose output is identical for this content)
    gzip_content.rebuild(tmp_path / "c", recipe, tmp_path / "r")
    assert (tmp_path / "r").read_bytes() == path.read_bytes()


def test_what_cannot_be_rebuilt_exactly_is_refused(tmp_path: Path) -> None:
    one = _member(b"first " * 1000)
    for name, data in [("two-members", one + _member(b"second")), ("trailing", one + b"junk"),
                       ("bad-crc", one[:-8] + b"\x00" * 8), ("not-gzip", b"PK\x03\x04" + b"\x00" * 40)]:  # fmt: skip
        path = tmp_path / f"{name}.gz"
        path.write_bytes(data)
        assert gzip_content.inflate(path, tmp_path / "c") is None, name


def test_inflating_a_highly_compressed_file_holds_no_more_than_a_few_chunks(tmp_path: Path) -> None:
    """100 MB of zeros compress to ~100 KB: one read chunk must not become 100 MB in memory."""
    import tracemalloc

    path = tmp_path / "zeros.gz"
    with gzip.open(path, "wb", 9) as gz:
        for _ in range(100):
            gz.write(bytes(1 << 20))
    tracemalloc.start()
    try:
        found = gzip_content.inflate(path, tmp_path / "c")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert found is not None and (tmp_path / "c").stat().st_size == 100 << 20
    assert peak < 8 * gzip_content.CHUNK, peak
