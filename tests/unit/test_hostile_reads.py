"""A hostile or damaged bucket cannot make a read write more than the object declares (issue #28, findings 2,
7 and 8), on moto. Each object here is crafted byte by byte, as an attacker with write access to the bucket
would craft it; every read must end in a typed error that names the object, with nothing left behind."""

from __future__ import annotations

import hashlib
import lzma
import resource
import time
from pathlib import Path
from typing import Any

import pytest
from deltaglider_core import DeltaStore, IntegrityError
from deltaglider_core.codec import djw
from deltaglider_core.codec.vcdiff import MAGIC, strip_secondary, varint_bytes
from deltaglider_core.errors import CodecError, DeltaGliderError
from deltaglider_core.ops.stats import compute_stats

MIB = 1 << 20


def _window(target: int, run: int | None = None) -> bytes:
    """One VCDIFF window without a source: one RUN of ``run`` bytes (default: the whole target)."""
    inst = bytes([0]) + varint_bytes(target if run is None else run)  # opcode 0: RUN, size in the inst stream
    data = b"A"
    body = varint_bytes(target) + b"\x00" + varint_bytes(len(data)) + varint_bytes(len(inst)) + b"\x00"
    body += data + inst
    return b"\x00" + varint_bytes(len(body)) + body


def _vcdiff(*windows: bytes, app_header: bytes | None = None) -> bytes:
    head = MAGIC + b"\x00"
    if app_header is None:
        return head + b"\x00" + b"".join(windows)
    return head + b"\x04" + varint_bytes(len(app_header)) + app_header + b"".join(windows)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _plant(env: Any, key: str, body: bytes, ref_key: str, **fields: str) -> None:
    """A .delta object naming ``ref_key`` (with the reference's real SHA-256), as a writer would record it."""
    ref_sha = env.client.head_object(Bucket=env.bucket, Key=ref_key)["Metadata"]["dg-file-sha256"]
    meta = {"dg-file-sha256": _sha(b"x" * 10), "dg-file-size": "10", "dg-ref-key": ref_key, "dg-ref-sha256": ref_sha}
    meta.update({f"dg-{k.replace('_', '-')}": v for k, v in fields.items()})
    env.client.put_object(Bucket=env.bucket, Key=key + ".delta", Body=body, Metadata=meta)


def _read(env: Any, key: str, dest: Path) -> None:
    dest.mkdir(exist_ok=True)
    DeltaStore(env.client).get(env.bucket, key, dest)


@pytest.fixture
def zip_space(moto_s3: Any, builds: Any) -> str:
    DeltaStore(moto_s3.client).put(builds(0), moto_s3.bucket, "rel/app-1.0.0.zip")
    return "rel/reference.bin"


def test_a_tiny_delta_that_decodes_to_32_mib_is_refused_before_it_writes(
    moto_s3: Any, zip_space: str, tmp_path: Path
) -> None:
    bomb = _vcdiff(_window(16 * MIB), _window(16 * MIB))
    assert len(bomb) < 40
    _plant(moto_s3, "rel/evil.zip", bomb, zip_space)
    with pytest.raises(IntegrityError, match=r"evil\.zip\.delta: its delta \(33554432 bytes declared\) would pass 10"):
        _read(moto_s3, "rel/evil.zip", tmp_path / "out")
    assert list((tmp_path / "out").iterdir()) == []


def test_a_window_over_xdelta3s_maximum_is_refused(moto_s3: Any, zip_space: str, tmp_path: Path) -> None:
    """The library in the wheel would decode a 32 MiB window; stock xdelta3 refuses it, and so does the reader."""
    _plant(moto_s3, "rel/wide.zip", _vcdiff(_window(32 * MIB)), zip_space, file_size=str(32 * MIB))
    with pytest.raises(IntegrityError, match=r"wide\.zip\.delta cannot be decoded") as caught:
        _read(moto_s3, "rel/wide.zip", tmp_path / "out")
    assert "more than xdelta3 allows" in str(caught.value.__cause__)
    assert list((tmp_path / "out").iterdir()) == []


def test_a_run_past_its_window_is_refused_by_the_decoder(moto_s3: Any, zip_space: str, tmp_path: Path) -> None:
    """The window declares 10 bytes (so the budget passes) but its instruction writes 1 MiB: xdelta3 refuses."""
    _plant(moto_s3, "rel/liar.zip", _vcdiff(_window(10, run=MIB)), zip_space)
    with pytest.raises(IntegrityError, match=r"liar\.zip\.delta cannot be decoded"):
        _read(moto_s3, "rel/liar.zip", tmp_path / "out")
    assert list((tmp_path / "out").iterdir()) == []


def test_an_xz_delta_that_unpacks_to_64_mib_stops_at_its_budget(moto_s3: Any, zip_space: str, tmp_path: Path) -> None:
    packed = lzma.compress(bytes(64 * MIB), format=lzma.FORMAT_XZ)
    assert len(packed) < 20_000
    _plant(
        moto_s3, "rel/xz.zip", packed, zip_space,
        content_encoding="zip", zip_rebuild='{"v":1}', delta_compression="xz",
    )  # fmt: skip
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(IntegrityError, match=r"xz\.zip\.delta: unpacking its xz-compressed delta would pass"):
        _read(moto_s3, "rel/xz.zip", tmp_path / "out")
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 48 * 1024  # KiB: far below 64 MiB
    assert list((tmp_path / "out").iterdir()) == []


def test_contents_past_the_recorded_content_size_are_refused(moto_s3: Any, tmp_path: Path) -> None:
    """A gzip content delta whose VCDIFF declares 1 MiB of contents where dg-content-size records 100."""
    import gzip

    ref = gzip.compress(b"reference contents " * 100, mtime=0)
    moto_s3.client.put_object(
        Bucket=moto_s3.bucket, Key="gz/reference.bin", Body=ref, Metadata={"dg-file-sha256": _sha(ref)}
    )
    recipe = '{"h":"H4sIAAAAAAAAAw==","l":6,"m":8,"s":0,"z":"1.2.13"}'
    _plant(
        moto_s3, "gz/big.tgz", _vcdiff(_window(MIB)), "gz/reference.bin",
        content_encoding="gzip", gzip_rebuild=recipe, content_size="100",
    )  # fmt: skip
    with pytest.raises(IntegrityError, match=r"big\.tgz\.delta: its delta \(1048576 bytes declared\) would pass 100"):
        _read(moto_s3, "gz/big.tgz", tmp_path / "out")
    assert list((tmp_path / "out").iterdir()) == []


@pytest.mark.parametrize(
    ("recipe", "why"),
    [
        ('{"h":"H4sIAAAAAAAAAw==","l":99,"m":8,"s":0,"z":"1"}', "level 99"),
        ('{"h":"H4sIAAAAAAAAAw==","l":6,"m":8,"s":9,"z":"1"}', "strategy 9"),
        ('{"h":"not base64!","l":6,"m":8,"s":0,"z":"1"}', "base64"),
    ],
)
def test_a_damaged_gzip_recipe_is_an_integrity_error(moto_s3: Any, tmp_path: Path, recipe: str, why: str) -> None:
    import gzip

    ref = gzip.compress(b"reference", mtime=0)
    moto_s3.client.put_object(
        Bucket=moto_s3.bucket, Key="gz/reference.bin", Body=ref, Metadata={"dg-file-sha256": _sha(ref)}
    )
    _plant(moto_s3, "gz/r.tgz", _vcdiff(_window(10)), "gz/reference.bin", content_encoding="gzip", gzip_rebuild=recipe)
    with pytest.raises(IntegrityError, match=rf"r\.tgz\.delta: its dg-gzip-rebuild metadata is damaged.*{why}"):
        _read(moto_s3, "gz/r.tgz", tmp_path / "out")
    assert list((tmp_path / "out").iterdir()) == []


def test_an_xz_reference_bomb_is_read_only_as_far_as_the_delta_reaches(
    moto_s3: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stock xdelta3's external compression: the delta says its source was xz; the "reference" is an xz bomb.
    The delta reads nothing of it (no source window), so nothing of it is decompressed; the read then fails
    its SHA-256 check, typed, with nothing left behind."""
    from deltaglider_core.content import external

    bomb = lzma.compress(bytes(64 * MIB), format=lzma.FORMAT_XZ)
    moto_s3.client.put_object(
        Bucket=moto_s3.bucket, Key="xz/reference.bin", Body=bomb, Metadata={"dg-file-sha256": _sha(bomb)}
    )
    written: list[int] = []
    real = external.decompress

    def measured(program: str, src: Path, out: Path, where: str, reach: int) -> None:
        real(program, src, out, where, reach)
        written.append(out.stat().st_size)

    monkeypatch.setattr(external, "decompress", measured)
    delta = _vcdiff(_window(10), app_header=b"v2.bin//v1.tar.xz/Y")
    _plant(moto_s3, "xz/v2.bin", delta, "xz/reference.bin")
    with pytest.raises(IntegrityError, match=r"v2\.bin\.delta: the rebuilt file does not match its SHA-256"):
        _read(moto_s3, "xz/v2.bin", tmp_path / "out")
    assert written == [0]
    assert list((tmp_path / "out").iterdir()) == []


def _nested_image_zip(path: Path, seed: int) -> Path:
    """A firmware bundle as users have them: a zip holding a gzip of a 16 MiB mostly empty disk image (its
    contents are 2,000 times the zip: two levels of deflate pass deflate's own 1032:1)."""
    import gzip
    import random
    import zipfile

    image = bytearray(16 * MIB)
    for at in range(0, len(image), MIB):
        image[at : at + 64] = random.Random(at).randbytes(64)
    image[5 * MIB : 5 * MIB + 8] = seed.to_bytes(8, "big")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("readme.txt", b"firmware bundle %d\n" % seed)
        archive.writestr("disk.img.gz", gzip.compress(bytes(image), 6, mtime=0))
    return path


def test_a_legitimate_archive_beyond_deflates_ratio_reads_back(moto_s3: Any, tmp_path: Path) -> None:
    """Found by an outside probe: the first read budget refused such a content delta it had just acknowledged
    (a reference's contents bounded by 1032 times its size). The writer now records dg-source-size."""
    v1, v2 = _nested_image_zip(tmp_path / "fw-1.zip", 1), _nested_image_zip(tmp_path / "fw-2.zip", 2)
    store = DeltaStore(moto_s3.client)
    store.put(v1, moto_s3.bucket, "fw/fw-1.zip")
    put = store.put(v2, moto_s3.bucket, "fw/fw-2.zip")
    meta = moto_s3.client.head_object(Bucket=moto_s3.bucket, Key="fw/fw-2.zip.delta")["Metadata"]
    assert put.kind == "delta" and meta.get("dg-content-encoding") == "zip"
    assert int(meta["dg-source-size"]) > 1032 * v1.stat().st_size
    got = DeltaStore(moto_s3.client).get(moto_s3.bucket, "fw/fw-2.zip", tmp_path / "back.zip")
    assert got.verified and (tmp_path / "back.zip").read_bytes() == v2.read_bytes()


def test_a_nested_gzip_bomb_in_a_reference_stops_at_the_recorded_source_size(
    moto_s3: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found by an outside probe: a reference whose zip member holds a gzip of 1 GiB of zeros was inflated in
    full into scratch before any cap. A content delta that records dg-source-size holds every stage of the
    reference's normalisation, the nested inflate included, to it."""
    import gzip
    import zipfile

    from deltaglider_core.content import gzip_content

    v1, v2 = _nested_image_zip(tmp_path / "fw-1.zip", 1), _nested_image_zip(tmp_path / "fw-2.zip", 2)
    store = DeltaStore(moto_s3.client)
    store.put(v1, moto_s3.bucket, "fw/fw-1.zip")
    store.put(v2, moto_s3.bucket, "fw/fw-2.zip")
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("readme.txt", b"firmware bundle 1\n")
        archive.writestr("disk.img.gz", gzip.compress(bytes(256 * MIB), 9, mtime=0))
    body = bomb.read_bytes()
    moto_s3.client.put_object(
        Bucket=moto_s3.bucket, Key="fw/reference.bin", Body=body, Metadata={"dg-file-sha256": _sha(body)}
    )
    meta = moto_s3.client.head_object(Bucket=moto_s3.bucket, Key="fw/fw-2.zip.delta")["Metadata"]
    meta["dg-ref-sha256"] = _sha(body)
    source = {"Bucket": moto_s3.bucket, "Key": "fw/fw-2.zip.delta"}
    moto_s3.client.copy_object(
        Bucket=moto_s3.bucket, Key="fw/fw-2.zip.delta", CopySource=source, Metadata=meta, MetadataDirective="REPLACE"
    )
    inflated: list[int] = []
    real = gzip_content.inflate

    def measured(path: Path, out: Path, cap: Any = None) -> Any:
        try:
            return real(path, out, cap)
        finally:
            inflated.append(out.stat().st_size if out.exists() else 0)

    monkeypatch.setattr(gzip_content, "inflate", measured)
    with pytest.raises(IntegrityError, match=r"fw-2\.zip\.delta: decompressing its reference would pass"):
        _read(moto_s3, "fw/fw-2.zip", tmp_path / "out")
    assert max(inflated, default=0) <= int(meta["dg-source-size"])
    assert list((tmp_path / "out").iterdir()) == []


def test_a_size_that_is_not_a_byte_count_is_a_typed_error(moto_s3: Any, zip_space: str, tmp_path: Path) -> None:
    """RFC 2047 lets metadata say "²", which str.isdigit() accepts and int() refuses."""
    _plant(moto_s3, "rel/sq.zip", _vcdiff(_window(10)), zip_space, file_size="=?UTF-8?B?wrI=?=")
    with pytest.raises(IntegrityError, match=r"sq\.zip\.delta: its dg-file-size is '²', not a byte count"):
        _read(moto_s3, "rel/sq.zip", tmp_path / "out")
    listed = {o.key: o for o in DeltaStore(moto_s3.client).list(moto_s3.bucket, "rel/")}
    assert listed["rel/sq.zip"].original_size is None  # listing: unknown, not a crash
    stats = compute_stats(DeltaStore(moto_s3.client), moto_s3.bucket)
    assert (stats.deltas, stats.original_bytes) == (2, None)  # one original size unknown: no total claimed


def test_a_djw_section_cannot_claim_more_than_its_bits_can_hold() -> None:
    started = time.process_time()
    with pytest.raises(CodecError, match="39 bytes cannot hold 67108864 bytes"):
        djw.decode(bytes(39), 64 * MIB, "evil")
    assert time.process_time() - started < 0.5


def test_two_xz_streams_in_one_lzma_section_are_a_codec_error(tmp_path: Path) -> None:
    """Stock xdelta3 writes one xz stream per section kind; data after its end was an untyped EOFError."""
    one = lzma.compress(b"A" * 20, format=lzma.FORMAT_XZ, check=lzma.CHECK_NONE)
    section = varint_bytes(20) + one  # a whole stream: the next window's section finds it ended
    inst = bytes([0]) + varint_bytes(20)
    body = varint_bytes(20) + b"\x01" + varint_bytes(len(section)) + varint_bytes(len(inst)) + b"\x00"
    window = b"\x00" + varint_bytes(len(body) + len(section) + len(inst)) + body + section + inst
    delta = tmp_path / "d"
    delta.write_bytes(MAGIC + b"\x00\x01\x02" + window + window)
    with pytest.raises(CodecError, match="LZMA data section does not decode"):
        strip_secondary(delta, tmp_path / "plain")


def test_an_lzma_section_larger_than_its_window_can_use_is_refused_before_decoding(tmp_path: Path) -> None:
    section = varint_bytes(256 * MIB) + lzma.compress(b"", format=lzma.FORMAT_XZ)
    body = varint_bytes(10) + b"\x01" + varint_bytes(len(section)) + b"\x02\x00" + section + b"\x00\x0a"
    delta = tmp_path / "d"
    delta.write_bytes(MAGIC + b"\x00\x01\x02" + b"\x00" + varint_bytes(len(body)) + body)
    with pytest.raises(DeltaGliderError, match="says it holds 268435456 bytes, more than a window of 10"):
        strip_secondary(delta, tmp_path / "plain")


def test_a_window_length_no_file_holds_is_a_typed_error(moto_s3: Any, zip_space: str, tmp_path: Path) -> None:
    """Found by `make fuzz`: a delta-encoding length of 2^66 made the header walk seek past what the OS allows."""
    window = b"\x00" + varint_bytes(1 << 66) + varint_bytes(10)
    _plant(moto_s3, "rel/far.zip", _vcdiff(window), zip_space)
    with pytest.raises(IntegrityError, match=r"far\.zip\.delta cannot be decoded") as caught:
        _read(moto_s3, "rel/far.zip", tmp_path / "out")
    assert "passes the end of the file" in str(caught.value.__cause__)
    assert list((tmp_path / "out").iterdir()) == []


@pytest.mark.parametrize(
    ("segments", "runs", "why"),
    [
        (bytes([0]) + varint_bytes(1 << 66), [], "passes the stream's end"),  # was OverflowError
        (bytes([2]) + varint_bytes(3) + varint_bytes(1 << 40) + b"xx", [[2, 6, 8]], "gzip header of"),
        (bytes([1]) + varint_bytes(2) + b"ab", [], "more deflated segments than recorded"),  # was StopIteration
    ],
)
def test_a_damaged_zip_stream_is_stream_damaged(tmp_path: Path, segments: bytes, runs: list[Any], why: str) -> None:
    """A target's normalised zip stream as a hostile delta decodes to (#28, finding 7): a typed error (the read
    path then removes its temporary file), not OverflowError or StopIteration."""
    import json as _json
    import struct

    from deltaglider_core.content import zip_stream

    body = _json.dumps({"v": 1, "z": "1", "d": runs}).encode()
    trailer = bytes([0xFF]) + varint_bytes(len(body)) + body
    stream = tmp_path / "normalised"
    stream.write_bytes(zip_stream.MAGIC + segments + trailer + struct.pack(">Q", len(trailer)))
    (tmp_path / "work").mkdir()
    with pytest.raises(zip_stream.StreamDamaged, match=why):
        zip_stream.rebuild(stream, tmp_path / "out.zip", tmp_path / "work")


def test_a_plan_that_inflates_past_its_bound_is_refused_without_holding_it(tmp_path: Path) -> None:
    """Found by an outside probe: a 1 MB zlib plan expanding to 1 GiB took 2 GB of memory before failing."""
    import struct
    import zlib

    from deltaglider_core.content import zip_stream

    packed = zlib.compress(b" " * (256 * MIB), 9)
    delta = tmp_path / "d"
    delta.write_bytes(zip_stream.DELTA_MAGIC + struct.pack(">I", len(packed)) + packed)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(zip_stream.StreamDamaged, match="inflates past"):
        zip_stream.read_delta(delta, tmp_path / "vcdiff")
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 100 * 1024  # KiB
