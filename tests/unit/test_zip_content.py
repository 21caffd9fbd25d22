"""Content-level deltas of zip containers: small deltas where members (and gzip files inside them) change a
little, the exact bytes back for every layout zip writers produce, clear errors and no file when the rebuild
is tampered with, and byte-level deltas (readable by DeltaGlider 6) in compatibility mode."""

from __future__ import annotations

import gzip
import io
import lzma
import random
import shutil
import subprocess
import tracemalloc
import zipfile
import zlib
from pathlib import Path
from typing import Any

import pytest
from deltaglider_core import DeltaStore, StoreConfig
from deltaglider_core.content import gzip_content, zip_content, zip_stream
from deltaglider_core.errors import IntegrityError

_WORDS_RNG = random.Random(3)
WORDS = [_WORDS_RNG.randbytes(5).hex() for _ in range(3000)]


def _text(seed: int, size: int, version: int) -> bytes:
    r = random.Random(seed)
    body = " ".join(r.choice(WORDS) for _ in range(size // 11)).encode()[:size]
    if seed % 3 == 0:  # a third of the members change a little every version
        body = body[: size // 2] + f"\nversion = {version}\n".encode() + body[size // 2 :]
    return body


def _gz(data: bytes, name: str, level: int) -> bytes:
    out = io.BytesIO()
    with gzip.GzipFile(name, "wb", level, out, mtime=1_700_000_000) as gz:
        gz.write(data)
    return out.getvalue()


def wheel(folder: Path, version: int, members: int = 24) -> Path:
    """Like a wheel of a package with data files: deflated sources, nested .json.gz models (Python's gzip at
    levels 9 and 6), a stored member, a stored .gz, an extra field, an empty file, a directory and a comment."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"pkg-1.{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.comment = f"build {version}".encode()
        zf.writestr("pkg/", b"")
        zf.writestr("pkg/__init__.py", b"")
        for m in range(members):
            zf.writestr(f"pkg/mod{m:02d}.py", _text(m, 30_000, version))
            level = 9 if m % 2 else 6
            zf.writestr(
                f"pkg/data/m{m:02d}/service-2.json.gz", _gz(_text(100 + m, 60_000, version), "service-2.json", level)
            )
        info = zipfile.ZipInfo("pkg/raw.bin", (2024, 1, 1, 0, 0, 0))
        info.compress_type = zipfile.ZIP_STORED
        info.extra = b"\xca\xfe\x04\x00abcd"
        zf.writestr(info, _text(7, 5_000, version))
        info = zipfile.ZipInfo("pkg/stored.json.gz", (2024, 1, 1, 0, 0, 0))
        zf.writestr(info, _gz(_text(9, 20_000, version), "stored.json", 9), compress_type=zipfile.ZIP_STORED)
    return path


def _empty_zip(tmp_path: Path) -> Path:
    """A reference with no members: every member of the target is decompressed and verified."""
    path = tmp_path / "empty-reference.zip"
    zipfile.ZipFile(path, "w").close()
    return path


def _round_trip(path: Path, tmp_path: Path) -> bytes:
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    assert zip_content.normalise_target(path, tmp_path / "n", work, _empty_zip(tmp_path)) is not None
    zip_stream.rebuild(tmp_path / "n", tmp_path / "rebuilt", work)
    return (tmp_path / "rebuilt").read_bytes()


def test_a_wheel_series_is_stored_as_small_content_deltas_and_read_back_exactly(moto_s3: Any, tmp_path: Path) -> None:
    files = [wheel(tmp_path / "in", v) for v in range(4)]
    store = DeltaStore(moto_s3.client)
    results = [store.put(f, moto_s3.bucket, f"whl/{f.name}") for f in files]
    assert [r.kind for r in results] == ["reference", "delta", "delta", "delta"]
    byte_level = DeltaStore(moto_s3.client, StoreConfig(deltaglider_compatible=True))
    for f, r in zip(files[1:], results[1:], strict=True):
        meta = moto_s3.client.head_object(Bucket=moto_s3.bucket, Key=r.stored_key)["Metadata"]
        assert meta["dg-content-encoding"] == "zip" and meta["dg-zip-rebuild"] == '{"v":1}'
        plain = byte_level.put(f, moto_s3.bucket, f"bytes/{f.name}")
        assert r.stored_size < 0.2 * plain.stored_size, (r.stored_size, plain.stored_size)
    for f in files:
        got = store.get(moto_s3.bucket, f"whl/{f.name}", tmp_path / f"out-{f.name}")
        assert got.verified and Path(got.path).read_bytes() == f.read_bytes()


def test_compatibility_mode_keeps_zips_byte_level(moto_s3: Any, tmp_path: Path) -> None:
    files = [wheel(tmp_path / "in", v) for v in range(2)]
    store = DeltaStore(moto_s3.client, StoreConfig(deltaglider_compatible=True))
    put = [store.put(f, moto_s3.bucket, f"c/{f.name}") for f in files][-1]
    assert put.kind == "delta"
    assert (
        "dg-content-encoding" not in moto_s3.client.head_object(Bucket=moto_s3.bucket, Key=put.stored_key)["Metadata"]
    )


def _data_descriptors(path: Path) -> Path:
    """zipfile writes sizes after the data (flag bit 3) when the output cannot seek."""

    class Unseekable(io.RawIOBase):
        def __init__(self) -> None:
            self.buf = io.BytesIO()

        def writable(self) -> bool:
            return True

        def write(self, b: Any) -> int:
            return self.buf.write(b)

    sink = Unseekable()
    with zipfile.ZipFile(sink, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for m in range(5):
            with zf.open(f"f{m}.txt", "w") as member:
                member.write(_text(m, 50_000, 1))
    path.write_bytes(sink.buf.getvalue())
    return path


def test_layouts_rebuild_exactly(tmp_path: Path) -> None:
    described = _data_descriptors(tmp_path / "dd.zip")
    with zipfile.ZipFile(described) as zf:
        assert all(i.flag_bits & 0x08 for i in zf.infolist())
    assert _round_trip(described, tmp_path) == described.read_bytes()
    series = wheel(tmp_path / "w", 1)
    assert _round_trip(series, tmp_path) == series.read_bytes()
    zip64 = tmp_path / "z64.zip"
    with (
        zipfile.ZipFile(zip64, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf,
        zf.open("big.txt", "w", force_zip64=True) as member,
    ):
        member.write(_text(5, 200_000, 1))
    assert _round_trip(zip64, tmp_path) == zip64.read_bytes()
    stub = tmp_path / "prefixed.zip"  # bytes before the first member (a self-extractor's stub)
    stub.write_bytes(b"#!/bin/sh\nexit 0\n" + described.read_bytes())
    assert _round_trip(stub, tmp_path) == stub.read_bytes()


@pytest.mark.skipif(shutil.which("zip") is None, reason="needs Info-ZIP's zip program to make the archive")
def test_info_zip_archives_rebuild_exactly(tmp_path: Path) -> None:
    """Info-ZIP's deflate is not zlib's: members are rebuilt by GNU gzip's (its relative) or kept as bytes."""
    tree = tmp_path / "tree"
    tree.mkdir()
    for m in range(12):
        (tree / f"f{m}.txt").write_bytes(_text(m, 40_000, 1))
    (tree / "pkg.json.gz").write_bytes(_gz(_text(50, 30_000, 1), "pkg.json", 9))
    archive = tmp_path / "info.zip"
    subprocess.run(["zip", "-q", "-X", "-r", str(archive), "."], cwd=tree, check=True)
    assert _round_trip(archive, tmp_path) == archive.read_bytes()


def test_a_tampered_deflate_setting_is_an_integrity_error_and_writes_nothing(moto_s3: Any, tmp_path: Path) -> None:
    files = [wheel(tmp_path / "in", v) for v in range(2)]
    store = DeltaStore(moto_s3.client)
    for f in files:
        store.put(f, moto_s3.bucket, f"t/{f.name}")
    # Decode the stored delta, change the first deflate level in the trailer, encode it again.
    work = tmp_path / "w"
    work.mkdir()
    delta_key = f"t/{files[1].name}.delta"
    moto_s3.client.download_file(moto_s3.bucket, delta_key, str(work / "d"))
    meta = moto_s3.client.head_object(Bucket=moto_s3.bucket, Key=delta_key)["Metadata"]
    assert meta.pop("dg-delta-compression") == "xz"  # the added text compresses: stored xz-compressed
    (work / "d").write_bytes(lzma.decompress((work / "d").read_bytes()))
    plan = zip_stream.read_delta(work / "d", work / "vcdiff")
    assert plan and set(plan.values()) <= {zip_stream.CONTENT, zip_stream.INNER, 3}
    assert zip_content.normalise_reference(files[0], work / "ref.n", work, plan)
    store.codec.decode(work / "ref.n", work / "vcdiff", work / "target.n")
    stream = (work / "target.n").read_bytes()
    assert b'"d":[[' in stream
    at = stream.index(b'"d":[[') + 6
    count_end = stream.index(b",", at)
    level_at = count_end + 1
    original_level = stream[level_at : level_at + 1]
    tampered = stream[:level_at] + (b"1" if original_level != b"1" else b"2") + stream[level_at + 1 :]
    (work / "target.n").write_bytes(tampered)
    store.codec.encode(work / "ref.n", work / "target.n", work / "vcdiff2")
    zip_stream.write_delta(plan, work / "vcdiff2", work / "d2")
    moto_s3.client.upload_file(str(work / "d2"), moto_s3.bucket, delta_key, ExtraArgs={"Metadata": meta})
    dest = tmp_path / "dest.whl"
    with pytest.raises(IntegrityError, match=r"rebuilt file does not match its SHA-256.*deflated with zlib"):
        DeltaStore(moto_s3.client).get(moto_s3.bucket, f"t/{files[1].name}", dest)
    assert not dest.exists() and list(tmp_path.glob("*dest*")) == []


def test_normalising_a_large_member_keeps_memory_flat(tmp_path: Path) -> None:
    archive = tmp_path / "big.zip"
    # 64 MiB that deflate to ~64 KiB: inflated in pieces
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf, zf.open("zeros.bin", "w") as member:
        for _ in range(64):
            member.write(b"\x00" * (1 << 20))
    work = tmp_path / "work"
    work.mkdir()
    tracemalloc.start()
    try:
        assert zip_content.normalise_target(archive, tmp_path / "n", work, _empty_zip(tmp_path)) is not None
        zip_stream.rebuild(tmp_path / "n", tmp_path / "r", work)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert (tmp_path / "r").read_bytes() == archive.read_bytes()
    assert peak < 8 * zip_stream.CHUNK, peak


def test_a_file_that_is_not_a_followable_zip_is_refused(tmp_path: Path) -> None:
    fake = tmp_path / "fake.zip"
    fake.write_bytes(b"PK\x03\x04" + b"\x00" * 100)
    assert not zip_content.is_zip(fake)
    work = tmp_path / "w"
    work.mkdir()
    assert not zip_content.normalise_reference(fake, tmp_path / "n", work, {})
    assert gzip_content.header_length(fake) is None


def test_only_changed_members_are_decompressed_in_the_target(tmp_path: Path) -> None:
    """Unchanged members stay bytes (nothing to verify or rebuild); a gzip file whose header alone changed
    stays the gzip file's bytes; changed contents are decompressed."""
    old, new = wheel(tmp_path / "a", 0), wheel(tmp_path / "b", 1)
    work = tmp_path / "w"
    work.mkdir()
    assert zip_content.normalise_target(new, tmp_path / "against-old", work, old) is not None
    assert zip_content.normalise_target(new, tmp_path / "against-nothing", work, _empty_zip(tmp_path)) is not None
    with zipfile.ZipFile(old) as zf:
        before = {i.filename: i.CRC for i in zf.infolist()}
    with zipfile.ZipFile(new) as zf:
        infos = zf.infolist()
    unchanged = [i for i in infos if before.get(i.filename) == i.CRC]
    assert 0 < len(unchanged) < len(infos)
    expanded = sum(i.file_size for i in infos)
    with zipfile.ZipFile(new) as zf:  # what decompressing an unchanged member (and a gzip file in it) adds
        inner = sum(len(gzip.decompress(zf.read(i))) - i.file_size for i in unchanged if i.filename.endswith(".gz"))
    saved = inner + sum(i.file_size - i.compress_size for i in unchanged)
    against_old = (tmp_path / "against-old").stat().st_size
    against_nothing = (tmp_path / "against-nothing").stat().st_size
    assert against_nothing > expanded  # every member and every nested gzip file decompressed
    assert against_old <= against_nothing - saved + 64 * len(infos), (against_old, against_nothing, saved)
    for target in ("against-old", "against-nothing"):
        zip_stream.rebuild(tmp_path / target, tmp_path / "rebuilt", work)
        assert (tmp_path / "rebuilt").read_bytes() == new.read_bytes()


def test_a_damaged_compressed_delta_is_an_integrity_error_and_writes_nothing(moto_s3: Any, tmp_path: Path) -> None:
    files = [wheel(tmp_path / "in", v) for v in range(2)]
    store = DeltaStore(moto_s3.client)
    for f in files:
        store.put(f, moto_s3.bucket, f"x/{f.name}")
    key = f"x/{files[1].name}.delta"
    head = moto_s3.client.head_object(Bucket=moto_s3.bucket, Key=key)
    body = bytearray(moto_s3.client.get_object(Bucket=moto_s3.bucket, Key=key)["Body"].read())
    body[len(body) // 2] ^= 0xFF
    moto_s3.client.put_object(Bucket=moto_s3.bucket, Key=key, Body=bytes(body), Metadata=head["Metadata"])
    dest = tmp_path / "dest.whl"
    with pytest.raises(IntegrityError, match=r"xz-compressed delta is damaged"):
        DeltaStore(moto_s3.client).get(moto_s3.bucket, f"x/{files[1].name}", dest)
    assert not dest.exists() and list(tmp_path.glob("*dest*")) == []


def test_too_little_temp_disk_for_the_contents_keeps_the_byte_level_delta(
    moto_s3: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from deltaglider_core.content import delta as content_delta

    files = [wheel(tmp_path / "in", v) for v in range(2)]
    store = DeltaStore(moto_s3.client)
    store.put(files[0], moto_s3.bucket, f"d/{files[0].name}")
    needed = zip_content.expanded_size(files[0]) + zip_content.expanded_size(files[1])
    # Room for the byte-level delta (checked by the store) but not for the decompressed contents.
    monkeypatch.setattr(content_delta, "_free_bytes", lambda _: needed)
    put = store.put(files[1], moto_s3.bucket, f"d/{files[1].name}")
    meta = moto_s3.client.head_object(Bucket=moto_s3.bucket, Key=put.stored_key)["Metadata"]
    assert put.kind == "delta" and "dg-content-encoding" not in meta
    got = store.get(moto_s3.bucket, f"d/{files[1].name}", tmp_path / "o.whl")
    assert Path(got.path).read_bytes() == files[1].read_bytes()


def test_the_reference_expands_only_what_the_target_decompressed(tmp_path: Path) -> None:
    old, new = wheel(tmp_path / "a", 0), wheel(tmp_path / "b", 1)
    work = tmp_path / "w"
    work.mkdir()
    plan = zip_content.normalise_target(new, tmp_path / "target", work, old)
    assert plan is not None
    with zipfile.ZipFile(old) as before, zipfile.ZipFile(new) as after:
        changed = {i.filename for i in after.infolist() if before.getinfo(i.filename).CRC != i.CRC}
        every = {i.filename: zip_stream.CONTENT | zip_stream.INNER for i in before.infolist()}
    assert set(plan) == changed  # unchanged members stay bytes on both sides
    assert zip_content.normalise_reference(old, tmp_path / "planned", work, plan)
    assert zip_content.normalise_reference(old, tmp_path / "everything", work, every)
    planned, everything = (tmp_path / "planned").stat().st_size, (tmp_path / "everything").stat().st_size
    assert old.stat().st_size < planned < 0.6 * everything, (planned, everything)
    # The plan travels with the delta: the same reference stream is derived on read.
    zip_stream.write_delta(plan, tmp_path / "target", tmp_path / "packed")
    assert zip_stream.read_delta(tmp_path / "packed", tmp_path / "unpacked") == plan
    assert (tmp_path / "unpacked").read_bytes() == (tmp_path / "target").read_bytes()


def test_content_delta_window_is_the_whole_source_or_xdelta3s_default() -> None:
    from deltaglider_core.content import delta as content_delta

    mib = 1 << 20
    assert content_delta.window(30 * mib, 128 * mib) == 32 * mib  # fits: the whole source
    assert content_delta.window(147 * mib, 128 * mib) == 64 * mib  # does not fit: not a larger part of it
    assert content_delta.window(147 * mib, 16 * mib) == 16 * mib  # the budget still caps it


def test_only_archives_whose_members_were_edited_are_worth_a_content_delta(builds: Any, tmp_path: Path) -> None:
    """Nightly builds whose changed members are generated anew gain nothing from their contents: the costly
    normalisation is skipped. Edited members, and gzip files re-made with a new header, are worth it."""
    from deltaglider_core.codec.xdelta3 import default_codec

    codec = default_codec()
    work = tmp_path / "w"
    work.mkdir()

    levels: list[bool] = []

    def encode(a: Path, b: Path, d: Path, *, quick: bool = False) -> str:
        levels.append(quick)
        return codec.encode(a, b, d, quick=quick)

    assert not zip_content.promising(builds(0), builds(1), work, encode)
    assert levels and all(levels)  # a probe estimates at xdelta3's fastest level (-1), ~10x faster than -9
    assert zip_content.promising(wheel(tmp_path / "a", 0), wheel(tmp_path / "b", 1), work, encode)
    header_only = tmp_path / "h"
    header_only.mkdir()
    with zipfile.ZipFile(header_only / "a.whl", "w", zipfile.ZIP_DEFLATED) as a:
        a.writestr("m.json.gz", _gz(_text(1, 50_000, 0), "m.json", 6))
    with zipfile.ZipFile(header_only / "b.whl", "w", zipfile.ZIP_DEFLATED) as b:
        model = bytearray(_gz(_text(1, 50_000, 0), "m.json", 6))
        model[4:8] = (1_800_000_000).to_bytes(4, "little")  # the same model gzipped again later
        b.writestr("m.json.gz", bytes(model))
    assert zip_content.promising(header_only / "a.whl", header_only / "b.whl", work, encode)


def test_a_member_that_inflates_past_its_declared_size_is_stopped_there(tmp_path: Path) -> None:
    """A zip bomb (a member table that under-declares) or a gzip file whose trailer lies stops inflating at the
    declared size: no content delta, and the temp disk holds at most one piece more."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    stream = b"".join(compressor.compress(b"\0" * (1 << 20)) for _ in range(64)) + compressor.flush()
    raw = tmp_path / "stream"
    raw.write_bytes(stream)
    out = tmp_path / "out"
    with open(raw, "rb") as src:
        assert not zip_content._inflate_range(src, 0, len(stream), out, 1 << 20, 0)
    assert out.stat().st_size <= 1 << 20
    lying = tmp_path / "lying.gz"  # 64 MiB of zeros whose trailer says 1 MiB
    body = gzip.compress(b"\0" * (64 << 20), 9, mtime=0)
    lying.write_bytes(body[:-4] + (1 << 20).to_bytes(4, "little"))
    assert gzip_content.inflate(lying, out) is None
    assert out.stat().st_size <= 1 << 20
    honest = tmp_path / "honest.gz"
    honest.write_bytes(body)
    assert gzip_content.inflate(honest, out) is not None and out.stat().st_size == 64 << 20
