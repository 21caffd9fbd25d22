"""Content-level deltas of zip containers (zip, whl, jar, apk, nupkg...): delta the members' contents.

Each member of a zip is compressed on its own, so a changed member changes all of its compressed bytes, and
a gzip file stored inside (botocore's wheels hold ~900 ``.json.gz`` models) changes all of its bytes again.
A byte-level delta then pays for every changed member in full. Here both archives are first turned into a
*normalised stream* that holds the members' decompressed contents, nested gzip files decompressed too, and
the delta is taken between those; what rebuilds the exact original bytes travels with the stream.

The stream's segments (:mod:`.zip_stream`, docs/format.md): raw bytes; a deflated member's contents; the
contents of a gzip file inside a member; and, in the target's stream only, a trailer with the deflate
settings that rebuild it.

- **Target** (:func:`normalise_target`): a member the reference has unchanged (same CRC-32, sizes, method)
  stays bytes; a gzip file inside a member whose compressed stream the reference also has (only its header
  changed) is the gzip file's bytes; other members are decompressed, nested gzip files too, where a deflate
  setting reproduces them. Settings are found by trying (:func:`gzip_content.find_deflate`, the recently
  matched ones first) and verified over each member's whole stream; a member nothing reproduces stays
  bytes, and after 8 such deflated members in a row the search stops for that archive.
- **Reference** (:func:`normalise_reference`): every member's bytes, and, for the members the target
  decompressed (the *plan*, stored in front of the delta), their contents in the same forms. Inflate only,
  exact everywhere, so every reader derives the same stream; and it stays about the archive's size, within
  the codec's source window.
- **Probe** (:func:`promising`): before any of this, the largest changed members' contents are delta-encoded
  against their namesakes'; members generated anew (nothing to gain) skip the normalisation.

Members are handled one at a time through temporary files in 1 MiB pieces, so memory stays flat whatever
the archive or member size. The member table comes from Python's ``zipfile`` (zip64 included); the rest
is written here because no library rebuilds a given deflate stream or describes an archive's exact bytes.
"""

from __future__ import annotations

import struct
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from deltaglider_core.codec.vcdiff import varint_bytes
from deltaglider_core.content import gzip_content
from deltaglider_core.content.gzip_content import Setting
from deltaglider_core.content.zip_stream import (
    CONTENT,
    DEFLATED,
    GZ_DEFLATED,
    GZ_STORED,
    INNER,
    MAGIC,
    Plan,
    Writer,
    range_chunks,
)
from deltaglider_core.support.limits import Cap, capped_open

ENCODING = "zip"
META = '{"v":1}'  # the dg-zip-rebuild value: the normalised stream's version (what rebuilds is in its trailer)
LOCAL_HEADER = struct.Struct("<IHHHHHIIIHH")  # signature ... name length, extra length (APPNOTE 4.3.7)
LOCAL_SIGNATURE = 0x04034B50
SAMPLE = 8  # changed members whose contents are tried before a whole content delta is
PROMISING = 0.7  # their content deltas must come under this share of their compressed size
CLEARLY = 0.2  # ... and under this share the probe stops early, as it does when they exceed it
GIVE_UP_AFTER = 8  # deflated members in a row that no setting reproduces: stop searching for this archive


def is_zip(path: Path) -> bool:
    """A zip archive whose first bytes are a local file header (not a self-extractor or a bare directory)."""
    with open(path, "rb") as f:
        if f.read(4) != b"PK\x03\x04":
            return False
    return zipfile.is_zipfile(path)


@dataclass
class _Search:
    """Deflate settings found so far (target side) and the hints that make the next search short."""

    settings: list[Setting] = field(default_factory=list)
    outer_hints: list[Setting] = field(default_factory=list)
    inner_hints: list[Setting] = field(default_factory=list)
    misses: int = 0
    inner_misses: int = 0


def _remember(hints: list[Setting], setting: Setting) -> None:
    """Most recently matched first: an archive's members mostly share one or two settings."""
    if setting in hints:
        hints.remove(setting)
    hints.insert(0, setting)
    del hints[3:]


MemberKey = tuple[int, int, int, int]  # CRC-32, compressed size, size, method
NESTED_GUESS = 8  # a gzip file inside a member is guessed to expand this much (its size is not in the table)


def expanded_size(archive: Path) -> int:
    """A generous guess of the normalised stream's size (the archive plus its members' contents), for the
    temp-disk check before normalising; 0 when the member table cannot be read."""
    try:
        with zipfile.ZipFile(archive) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError):
        return 0
    contents = sum(i.file_size * (NESTED_GUESS if i.filename.endswith(".gz") else 1) for i in infos)
    return archive.stat().st_size + contents


def normalise_reference(archive: Path, out: Path, work: Path, plan: Plan, cap: Cap | None = None) -> bool:
    """The reference's normalised stream: each member's bytes as they are, followed, for the members ``plan``
    names (those whose namesake the target decompressed), by their decompressed bytes and/or a nested gzip
    file's contents. Needs inflate only, which is exact everywhere, so with the same plan every reader derives
    the same stream. False when the member table cannot be followed."""
    return _normalise(archive, out, work, None, plan, cap)


def normalise_target(archive: Path, out: Path, work: Path, reference: Path) -> Plan | None:
    """The target's normalised stream, rebuildable: members found unchanged in ``reference`` (same CRC-32,
    sizes and method) as their bytes; a gzip file inside a member whose compressed stream the reference has
    too (only its header changed, e.g. its mtime) as the gzip file's bytes; the others decompressed, nested
    gzip files too, where a deflate setting is found that reproduces them (verified). Returns the plan for the
    reference's stream (which namesakes to expand, in which forms), or None when a member table cannot be
    followed."""
    try:
        with zipfile.ZipFile(reference) as zf:
            infos = zf.infolist()
            known = {_key(i) for i in infos}
    except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError):
        return None
    streams = _gzip_streams(reference, infos, work)
    plan: Plan = {}
    return plan if _normalise(archive, out, work, _Known(known, streams, plan), {}) else None


def promising(reference: Path, target: Path, work: Path, encode: Callable[..., object]) -> bool:
    """Whether a content delta can beat the byte-level one, judged on the largest members the target changed
    (same name, other bytes): a gzip file inside whose compressed stream is unchanged (only its header moved)
    says yes at once; otherwise their contents are delta-encoded against their namesakes' and must come to
    under ``PROMISING`` of their compressed size. Members rebuilt from scratch (nothing to gain) say no, and
    the costly normalisation is skipped. The probe stops at the first member that settles it."""
    try:
        with zipfile.ZipFile(reference) as before, zipfile.ZipFile(target) as after:
            old = {i.filename: i for i in before.infolist()}
            changed = [
                i for i in after.infolist()
                if i.filename in old and _key(i) != _key(old[i.filename])
                and _decompressible(i) and _decompressible(old[i.filename])
            ]  # fmt: skip
    except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError):
        return False
    sample = sorted(changed, key=lambda i: i.compress_size, reverse=True)[:SAMPLE]
    compressed = delta = 0
    with open(reference, "rb") as ref_src, open(target, "rb") as new_src:
        for info in sample:
            pair = []
            for src, member, name in ((ref_src, old[info.filename], "old"), (new_src, info, "new")):
                start = _data_start(src, member.header_offset)
                pair.append(_decompressed(src, member, start, work / f"probe-{name}") if start is not None else None)
            a, b = pair
            if a is None or b is None:
                continue
            stream_a, stream_b = _gzip_stream_key(a), _gzip_stream_key(b)
            if stream_a is not None and stream_a == stream_b:
                return True  # a gzip file re-made with a new header: its bytes delta well
            inner_a, inner_b = work / "probe-old-inner", work / "probe-new-inner"
            both = stream_a is not None and stream_b is not None
            if both and gzip_content.inflate(a, inner_a) and gzip_content.inflate(b, inner_b):
                a, b = inner_a, inner_b  # compare the gzip files' contents
            encode(a, b, work / "probe.delta", quick=True)  # xdelta3 -1: ~10x faster than -9 on new content
            delta += (work / "probe.delta").stat().st_size
            compressed += info.compress_size
            if delta >= compressed:
                return False  # generated anew: more to store than the compressed bytes (usually after one)
            if delta < CLEARLY * compressed:
                return True
    return compressed > 0 and delta < PROMISING * compressed


def _gzip_streams(archive: Path, infos: list[zipfile.ZipInfo], work: Path) -> set[tuple[bytes, int]]:
    """(CRC-32/size trailer, deflate stream length) of every gzip file inside ``archive``'s members."""
    found: set[tuple[bytes, int]] = set()
    with open(archive, "rb") as src:
        for info in infos:
            start = _data_start(src, info.header_offset)
            if start is None or not _decompressible(info):
                continue
            content = _decompressed(src, info, start, work / "reference-member")
            key = _gzip_stream_key(content) if content is not None else None
            if key is not None:
                found.add(key)
    return found


def _gzip_stream_key(content: Path) -> tuple[bytes, int] | None:
    header = gzip_content.header_length(content)
    if header is None:
        return None
    size = content.stat().st_size
    if size < header + gzip_content.TRAILER:
        return None
    with open(content, "rb") as f:
        f.seek(size - gzip_content.TRAILER)
        return f.read(gzip_content.TRAILER), size - header - gzip_content.TRAILER


@dataclass(frozen=True)
class _Known:
    """What the target's reference holds: member keys, and the gzip streams inside its members."""

    members: set[MemberKey]
    gzip_streams: set[tuple[bytes, int]]
    plan: Plan  # filled in: the forms the target decompressed each member into


def _key(info: zipfile.ZipInfo) -> MemberKey:
    return info.CRC, info.compress_size, info.file_size, info.compress_type


def _normalise(archive: Path, out: Path, work: Path, known: _Known | None, plan: Plan, cap: Cap | None = None) -> bool:
    try:
        with zipfile.ZipFile(archive) as zf:
            members = sorted(zf.infolist(), key=lambda i: i.header_offset)
    except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError):
        return False
    size = archive.stat().st_size
    search = _Search() if known is not None else None
    with open(archive, "rb") as src, capped_open(out, cap) as sink:
        sink.write(MAGIC)
        writer = Writer(sink)
        position = 0
        for info in members:
            start = _data_start(src, info.header_offset)
            end = None if start is None else start + info.compress_size
            if start is None or end is None or info.header_offset < position or end > size:
                return False
            writer.raw_range(src, position, start - position)
            if known is None:
                _reference_member(src, info, start, writer, work, plan.get(info.filename, 0), cap)
            elif search is not None:
                _target_member(src, info, start, writer, work, search, known)
            position = end
        writer.raw_range(src, position, size - position)
        writer.flush_raw()
        if search is not None:
            writer.trailer(search.settings)
    return True


def _data_start(src: BinaryIO, offset: int) -> int | None:
    src.seek(offset)
    head = src.read(LOCAL_HEADER.size)
    if len(head) < LOCAL_HEADER.size:
        return None
    fields = LOCAL_HEADER.unpack(head)
    if fields[0] != LOCAL_SIGNATURE:
        return None
    name_length: int = fields[9]
    extra_length: int = fields[10]
    return offset + LOCAL_HEADER.size + name_length + extra_length


def _decompressible(info: zipfile.ZipInfo) -> bool:
    encrypted = bool(info.flag_bits & 0x1)
    methods = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)
    return not encrypted and info.compress_type in methods and info.compress_size > 0


def _decompressed(src: BinaryIO, info: zipfile.ZipInfo, start: int, out: Path) -> Path | None:
    """The member's decompressed bytes in ``out`` (None when its deflate stream does not check out)."""
    if info.compress_type == zipfile.ZIP_DEFLATED:
        return out if _inflate_range(src, start, info.compress_size, out, info.file_size, info.CRC) else None
    _copy_range(src, start, info.compress_size, out)
    return out


def _reference_member(
    src: BinaryIO, info: zipfile.ZipInfo, start: int, writer: Writer, work: Path, forms: int, cap: Cap | None
) -> None:
    """The member's bytes, then the forms the target wrote its namesake in: its decompressed bytes (a deflated
    member) and/or a gzip file's contents (a gzip file inside it, inflated within ``cap``: no more than the
    whole stream may hold)."""
    writer.raw_range(src, start, info.compress_size)
    if not forms or not _decompressible(info):
        return
    if cap is not None and info.file_size > cap.limit:
        return  # a member that declares more than the whole stream may hold is not expanded
    content = _decompressed(src, info, start, work / "member")
    if content is None:
        return
    deflated = info.compress_type == zipfile.ZIP_DEFLATED
    if deflated and forms & CONTENT:
        writer.segment(DEFLATED, content)
    inner = _nested_gzip(content, work, None, cap) if forms & INNER else None
    if inner is not None:
        writer.segment(GZ_DEFLATED if deflated else GZ_STORED, work / "inner", prefix=_header_prefix(inner[0]))


def _header_prefix(header: bytes) -> bytes:
    return varint_bytes(len(header)) + header


def _target_member(
    src: BinaryIO, info: zipfile.ZipInfo, start: int, writer: Writer, work: Path, search: _Search, known: _Known
) -> None:
    """The member's bytes when unchanged or not reproducible; else its contents (a nested gzip file's contents
    too, unless its compressed stream is in the reference) with the deflate settings that rebuild it."""
    if _key(info) in known.members or not _decompressible(info):
        writer.raw_range(src, start, info.compress_size)
        return
    content = _decompressed(src, info, start, work / "member")
    outer: Setting | None = None
    if content is not None and info.compress_type == zipfile.ZIP_DEFLATED:
        outer = _search_outer(src, start, info.compress_size, content, search)
    if content is None or (outer is None and info.compress_type == zipfile.ZIP_DEFLATED):
        writer.raw_range(src, start, info.compress_size)
        return
    stream = _gzip_stream_key(content)
    # A gzip file inside whose compressed stream the reference has (only its header changed): its bytes, as a
    # deflated member's contents, delta well; otherwise its own contents, when they rebuild.
    header_only = stream is not None and stream in known.gzip_streams and outer is not None
    inner = _nested_gzip(content, work, search) if stream is not None and not header_only else None

    def decompressed(kind: int, payload: Path, settings: list[Setting], form: int, prefix: bytes = b"") -> None:
        search.settings.extend(settings)  # rebuild order: a nested gzip's setting, then the member's
        writer.segment(kind, payload, prefix=prefix)
        known.plan[info.filename] = known.plan.get(info.filename, 0) | form  # the namesake's form to expand

    if inner is not None and inner[1] is not None:
        kind = GZ_DEFLATED if outer is not None else GZ_STORED
        settings = [inner[1]] if outer is None else [inner[1], outer]
        decompressed(kind, work / "inner", settings, INNER, _header_prefix(inner[0]))
    elif outer is not None:
        decompressed(DEFLATED, content, [outer], CONTENT)
    else:
        writer.raw_range(src, start, info.compress_size)


def _search_outer(src: BinaryIO, start: int, length: int, content: Path, search: _Search) -> Setting | None:
    if search.misses >= GIVE_UP_AFTER:
        return None
    found = gzip_content.find_deflate(Path(src.name), start, length, content, search.outer_hints)
    if found is None:
        search.misses += 1
        return None
    search.misses = 0
    _remember(search.outer_hints, found)
    return found


def _nested_gzip(
    content: Path, work: Path, search: _Search | None, cap: Cap | None = None
) -> tuple[bytes, Setting | None] | None:
    """(gzip header, inner setting) when ``content`` is one gzip member that rebuilds (reference side: that
    inflates, within ``cap``); its decompressed bytes are then in ``work/inner``."""
    if gzip_content.header_length(content) is None:
        return None
    found = gzip_content.inflate(content, work / "inner", cap)
    if found is None:
        return None
    header_length, stream = found
    with open(content, "rb") as f:
        header = f.read(header_length)
    if search is None:
        return header, None
    if search.inner_misses >= GIVE_UP_AFTER:
        return None
    setting = gzip_content.find_deflate(content, header_length, stream, work / "inner", search.inner_hints)
    if setting is None:
        search.inner_misses += 1
        return None
    search.inner_misses = 0
    _remember(search.inner_hints, setting)
    return header, setting


def _inflate_range(src: BinaryIO, start: int, length: int, out: Path, size: int, crc: int) -> bool:
    """Inflate the raw deflate stream at ``start`` into ``out``, never past the member table's ``size``; True
    when it ends exactly at ``start + length`` with that size and CRC-32."""
    try:
        with open(out, "wb") as sink:
            stream = gzip_content.BoundedInflate(sink, size)
            for chunk in range_chunks(src, start, length):
                if stream.inflater.eof or not stream.feed(chunk) or stream.inflater.unused_data:
                    return False
    except zlib.error:
        return False
    return stream.inflater.eof and stream.size == size and stream.crc == crc


def _copy_range(src: BinaryIO, start: int, length: int, out: Path) -> None:
    with open(out, "wb") as sink:
        for chunk in range_chunks(src, start, length):
            sink.write(chunk)
