"""Content-level deltas of zip containers (zip, whl, jar, apk, nupkg...): delta the members' contents.

Each member of a zip is compressed on its own, so a changed member changes all of its compressed bytes, and
a gzip file stored inside (botocore's wheels hold ~900 ``.json.gz`` models) changes all of its bytes again.
A byte-level delta then pays for every changed member in full. Here both archives are first turned into a
*normalised stream* that holds the members' decompressed contents, nested gzip files decompressed too, and
the delta is taken between those; what rebuilds the exact original bytes travels with the stream.

The normalised stream (``MAGIC``, then segments ``[kind byte][length varint][payload]``; varints as in
RFC 3284):

- ``RAW``: bytes copied as they are: local headers, data descriptors, the central directory, prepended
  data, and every member that is not rebuilt (stored, encrypted, other methods, or not reproducible);
- ``DEFLATED``: the decompressed content of a deflated member, rebuilt by raw deflate (RFC 1951);
- ``GZ_DEFLATED`` / ``GZ_STORED``: a member (deflated / stored) whose content is itself one gzip member
  (RFC 1952): payload ``[header length varint][gzip header][decompressed content]``; rebuilt by deflating
  the content, appending the CRC-32/size trailer, and (for ``GZ_DEFLATED``) deflating that gzip file again;
- ``TRAILER`` (the target's only, last): JSON ``{"v": 1, "z": zlib version, "d": [[count, level, memLevel],
  ...]}``, runs of the deflate settings in the order the rebuild uses them (a nested member: inner first),
  then 8 bytes, big-endian, the length of the trailer segment.

The target's settings are found by trying (:func:`gzip_content.find_deflate`: the previous member's setting
first) and each is verified at write time over the member's whole stream; a member no setting reproduces
stays ``RAW``. After 8 deflated members in a row that nothing reproduces (another deflate implementation,
e.g. Info-ZIP's) the search stops for the rest of that archive. The *reference* is normalised the same way
without the search (every deflated member decompressed), which only needs inflate, exact everywhere, so a
reader always rebuilds the same source stream. Reading rebuilds member by member and the store checks the
SHA-256 of the whole file as for every read.

Members are handled one at a time through temporary files in 1 MiB pieces, so memory stays flat whatever
the archive or member size. The member table comes from Python's ``zipfile`` (zip64 included); the rest
is written here because no library rebuilds a given deflate stream or describes an archive's exact bytes.
"""

from __future__ import annotations

import json
import struct
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from . import gzip_content
from .gzip_content import GNU, Setting
from .vcdiff import varint_bytes

ENCODING = "zip"
VERSION = 1
META = '{"v":1}'  # the dg-zip-rebuild value: the normalised stream's version (what rebuilds is in its trailer)
MAGIC = b"DGZIPN\x00\x01"
DELTA_MAGIC = b"DGZIPD\x00\x01"
RAW, DEFLATED, GZ_DEFLATED, GZ_STORED, TRAILER = 0, 1, 2, 3, 0xFF
CHUNK = gzip_content.CHUNK
LOCAL_HEADER = struct.Struct("<IHHHHHIIIHH")  # signature ... name length, extra length (APPNOTE 4.3.7)
LOCAL_SIGNATURE = 0x04034B50
GIVE_UP_AFTER = 8  # deflated members in a row that no setting reproduces: stop searching for this archive


class RebuildError(Exception):
    """The normalised stream cannot be turned back into the archive (the message says why)."""


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


CONTENT, INNER = 1, 2  # forms a reference member is expanded into: its decompressed bytes, a nested gzip's contents
Plan = dict[str, int]  # member name -> the forms (bits) the reference's stream holds it in, beside its bytes


def normalise_reference(archive: Path, out: Path, work: Path, plan: Plan) -> bool:
    """The reference's normalised stream: each member's bytes as they are, followed, for the members ``plan``
    names (those whose namesake the target decompressed), by their decompressed bytes and/or a nested gzip
    file's contents. Needs inflate only, which is exact everywhere, so with the same plan every reader derives
    the same stream. False when the member table cannot be followed."""
    return _normalise(archive, out, work, None, plan)


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


def pack_plan(plan: Plan) -> bytes:
    """The plan as it travels in front of the delta (zlib-compressed JSON, names sorted)."""
    return zlib.compress(json.dumps(sorted(plan.items()), separators=(",", ":")).encode(), 9)


def write_delta(plan: Plan, vcdiff: Path, out: Path) -> None:
    """The stored delta: ``DELTA_MAGIC``, the packed plan's length (4 bytes, big-endian), the plan, the VCDIFF."""
    packed = pack_plan(plan)
    with open(out, "wb") as sink, open(vcdiff, "rb") as src:
        sink.write(DELTA_MAGIC + struct.pack(">I", len(packed)) + packed)
        while chunk := src.read(CHUNK):
            sink.write(chunk)


def read_delta(delta: Path, vcdiff: Path) -> Plan:
    """Split a stored delta into its plan (returned) and its VCDIFF (written to ``vcdiff``)."""
    with open(delta, "rb") as src:
        head = src.read(len(DELTA_MAGIC) + 4)
        if len(head) < len(DELTA_MAGIC) + 4 or head[: len(DELTA_MAGIC)] != DELTA_MAGIC:
            raise RebuildError("the delta does not start with its reference plan")
        (length,) = struct.unpack(">I", head[len(DELTA_MAGIC) :])
        plan = unpack_plan(src.read(length))
        with open(vcdiff, "wb") as sink:
            while chunk := src.read(CHUNK):
                sink.write(chunk)
    return plan


def unpack_plan(data: bytes) -> Plan:
    try:
        items = json.loads(zlib.decompress(data))
        return {str(name): int(forms) for name, forms in items}
    except (zlib.error, ValueError, TypeError) as exc:
        raise RebuildError(f"the reference plan is damaged ({exc})") from exc


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


def _normalise(archive: Path, out: Path, work: Path, known: _Known | None, plan: Plan) -> bool:
    try:
        with zipfile.ZipFile(archive) as zf:
            members = sorted(zf.infolist(), key=lambda i: i.header_offset)
    except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError):
        return False
    size = archive.stat().st_size
    search = _Search() if known is not None else None
    with open(archive, "rb") as src, open(out, "wb") as sink:
        sink.write(MAGIC)
        writer = _Writer(sink)
        position = 0
        for info in members:
            start = _data_start(src, info.header_offset)
            end = None if start is None else start + info.compress_size
            if start is None or end is None or info.header_offset < position or end > size:
                return False
            writer.raw_range(src, position, start - position)
            if known is None:
                _reference_member(src, info, start, writer, work, plan.get(info.filename, 0))
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
    src: BinaryIO, info: zipfile.ZipInfo, start: int, writer: _Writer, work: Path, forms: int
) -> None:
    """The member's bytes, then the forms the target wrote its namesake in: its decompressed bytes (a deflated
    member) and/or a gzip file's contents (a gzip file inside it)."""
    writer.raw_range(src, start, info.compress_size)
    if not forms or not _decompressible(info):
        return
    content = _decompressed(src, info, start, work / "member")
    if content is None:
        return
    deflated = info.compress_type == zipfile.ZIP_DEFLATED
    if deflated and forms & CONTENT:
        writer.segment(DEFLATED, content)
    inner = _nested_gzip(content, work, None) if forms & INNER else None
    if inner is not None:
        writer.segment(GZ_DEFLATED if deflated else GZ_STORED, work / "inner", prefix=_header_prefix(inner[0]))


def _header_prefix(header: bytes) -> bytes:
    return varint_bytes(len(header)) + header


def _target_member(
    src: BinaryIO, info: zipfile.ZipInfo, start: int, writer: _Writer, work: Path, search: _Search, known: _Known
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
    if stream is not None and stream in known.gzip_streams and outer is not None:
        search.settings.append(outer)  # only the gzip header changed: the gzip file's bytes delta well
        writer.segment(DEFLATED, content)
        known.plan[info.filename] = known.plan.get(info.filename, 0) | CONTENT
        return
    inner = _nested_gzip(content, work, search) if stream is not None else None
    if inner is not None and inner[1] is not None:
        search.settings.append(inner[1])
        if outer is not None:
            search.settings.append(outer)
        writer.segment(GZ_DEFLATED if outer is not None else GZ_STORED, work / "inner", prefix=_header_prefix(inner[0]))
        known.plan[info.filename] = known.plan.get(info.filename, 0) | INNER
    elif outer is not None:
        search.settings.append(outer)
        writer.segment(DEFLATED, content)
        known.plan[info.filename] = known.plan.get(info.filename, 0) | CONTENT
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


def _nested_gzip(content: Path, work: Path, search: _Search | None) -> tuple[bytes, Setting | None] | None:
    """(gzip header, inner setting) when ``content`` is one gzip member that rebuilds (reference side: that
    inflates); its decompressed bytes are then in ``work/inner``."""
    if gzip_content.header_length(content) is None:
        return None
    found = gzip_content.inflate(content, work / "inner")
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
    """Inflate the raw deflate stream at ``start`` into ``out``; True when it ends exactly at ``start + length``
    with the recorded size and CRC-32."""
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    produced, check = 0, 0
    try:
        with open(out, "wb") as sink:
            for chunk in _range_chunks(src, start, length):
                if inflater.eof:
                    return False
                pending = chunk
                while True:  # at most CHUNK bytes out per call: memory stays flat
                    data = inflater.decompress(pending, CHUNK)
                    sink.write(data)
                    produced, check = produced + len(data), zlib.crc32(data, check)
                    pending = inflater.unconsumed_tail
                    if inflater.eof or (not pending and len(data) < CHUNK):
                        break
                if inflater.unused_data:
                    return False
    except zlib.error:
        return False
    return inflater.eof and produced == size and check == crc


def _copy_range(src: BinaryIO, start: int, length: int, out: Path) -> None:
    with open(out, "wb") as sink:
        for chunk in _range_chunks(src, start, length):
            sink.write(chunk)


def _range_chunks(src: BinaryIO, start: int, length: int) -> Iterator[bytes]:
    src.seek(start)
    while length > 0:
        chunk = src.read(min(CHUNK, length))
        if not chunk:
            raise RebuildError(f"{src.name}: ends inside a member")
        length -= len(chunk)
        yield chunk


class _Writer:
    """Appends segments, merging adjacent raw bytes into one segment."""

    def __init__(self, sink: BinaryIO) -> None:
        self.sink = sink
        self.pending: list[tuple[BinaryIO, int, int] | bytes] = []
        self.pending_size = 0

    def raw_bytes(self, data: bytes) -> None:
        self.pending.append(data)
        self.pending_size += len(data)

    def raw_range(self, src: BinaryIO, start: int, length: int) -> None:
        if length > 0:
            self.pending.append((src, start, length))
            self.pending_size += length

    def flush_raw(self) -> None:
        if not self.pending:
            return
        self.sink.write(bytes([RAW]) + varint_bytes(self.pending_size))
        for piece in self.pending:
            if isinstance(piece, bytes):
                self.sink.write(piece)
            else:
                for chunk in _range_chunks(*piece):
                    self.sink.write(chunk)
        self.pending, self.pending_size = [], 0

    def segment(self, kind: int, payload: Path, prefix: bytes = b"") -> None:
        self.flush_raw()
        self.sink.write(bytes([kind]) + varint_bytes(len(prefix) + payload.stat().st_size) + prefix)
        with open(payload, "rb") as f:
            while chunk := f.read(CHUNK):
                self.sink.write(chunk)

    def trailer(self, settings: list[Setting]) -> None:
        runs: list[list[int]] = []
        for level, mem in settings:
            if runs and runs[-1][1:] == [level, mem]:
                runs[-1][0] += 1
            else:
                runs.append([1, level, mem])
        recipe: dict[str, Any] = {"v": VERSION, "z": zlib.ZLIB_RUNTIME_VERSION, "d": runs}
        if any(mem == GNU for _, mem in settings):
            recipe["g"] = gzip_content.gnu_gzip()
        body = json.dumps(recipe, separators=(",", ":")).encode()
        segment = bytes([TRAILER]) + varint_bytes(len(body)) + body
        self.sink.write(segment + struct.pack(">Q", len(segment)))


def rebuild(normalised: Path, out: Path, work: Path) -> str:
    """Write the archive the target's normalised stream describes; return what deflated it (zlib's version, and
    GNU gzip's where used) for the caller's message should the SHA-256 differ. RebuildError when the stream is
    not one. ``work``: a directory for a member's content when the ``gzip`` program deflates it."""
    with open(normalised, "rb") as src:
        end, recipe = _read_trailer(src)
        settings = _settings(recipe)
        src.seek(0)
        if src.read(len(MAGIC)) != MAGIC:
            raise RebuildError("not a normalised zip stream (bad magic)")
        with open(out, "wb") as sink:
            while src.tell() < end:
                kind = _byte(src)
                length = _varint(src)
                if kind == RAW:
                    for chunk in _range_chunks(src, src.tell(), length):
                        sink.write(chunk)
                elif kind == DEFLATED:
                    _deflate_range(src, length, next(settings), work, sink.write)
                elif kind in (GZ_DEFLATED, GZ_STORED):
                    _rebuild_gzip(src, length, kind, settings, work, sink)
                else:
                    raise RebuildError(f"unknown segment kind {kind} at offset {src.tell()}")
            if src.tell() != end or next(settings, None) is not None:
                raise RebuildError("the segments do not match the recorded deflate settings")
    return " and ".join(str(v) for v in (f"zlib {recipe.get('z', '?')}", recipe.get("g")) if v)


def _rebuild_gzip(
    src: BinaryIO, length: int, kind: int, settings: Iterator[Setting], work: Path, sink: BinaryIO
) -> None:
    """A member that is a gzip file: header, inner deflate, trailer; deflated again unless the member is stored."""
    begin = src.tell()
    header = src.read(_varint(src))
    content = length - (src.tell() - begin)
    inner = next(settings)
    outer = next(settings) if kind == GZ_DEFLATED else None
    if outer is not None and outer[1] == GNU:  # the program reads a file: build the gzip file first
        member = work / "gz-member"
        with open(member, "wb") as f:
            _write_gzip(src, header, content, inner, work, f.write)
        for data in gzip_content.deflate_chunks(member, outer):
            sink.write(data)
        return
    compressor = zlib.compressobj(*_args(outer)) if outer is not None else None

    def emit(data: bytes) -> None:
        sink.write(compressor.compress(data) if compressor is not None else data)

    _write_gzip(src, header, content, inner, work, emit)
    if compressor is not None:
        sink.write(compressor.flush())


def _write_gzip(
    src: BinaryIO, header: bytes, content: int, setting: Setting, work: Path, emit: Callable[[bytes], object]
) -> None:
    emit(header)
    crc = _deflate_range(src, content, setting, work, emit)
    emit(struct.pack("<II", crc, content & 0xFFFFFFFF))


def _deflate_range(src: BinaryIO, length: int, setting: Setting, work: Path, emit: Callable[[bytes], object]) -> int:
    """Deflate the next ``length`` bytes of ``src`` with ``setting`` into ``emit``; return their CRC-32."""
    crc = 0
    if setting[1] == GNU:  # the program reads a file
        piece = work / "gnu-member"
        with open(piece, "wb") as f:
            for chunk in _range_chunks(src, src.tell(), length):
                crc = zlib.crc32(chunk, crc)
                f.write(chunk)
        for data in gzip_content.deflate_chunks(piece, setting):
            emit(data)
        return crc
    compressor = zlib.compressobj(*_args(setting))
    for chunk in _range_chunks(src, src.tell(), length):
        crc = zlib.crc32(chunk, crc)
        emit(compressor.compress(chunk))
    emit(compressor.flush())
    return crc


def _args(setting: Setting) -> tuple[int, int, int, int]:
    level, mem = setting
    return level, zlib.DEFLATED, -zlib.MAX_WBITS, mem


def _read_trailer(src: BinaryIO) -> tuple[int, dict[str, Any]]:
    total = src.seek(0, 2)
    if total < len(MAGIC) + 8:
        raise RebuildError("too short for a normalised zip stream")
    src.seek(total - 8)
    (length,) = struct.unpack(">Q", src.read(8))
    end = total - 8 - length
    if not len(MAGIC) <= end < total:
        raise RebuildError("the trailer length is out of range")
    src.seek(end)
    if _byte(src) != TRAILER:
        raise RebuildError("no trailer segment where the trailer length points")
    body = src.read(_varint(src))
    try:
        recipe = json.loads(body)
    except ValueError as exc:
        raise RebuildError(f"the trailer is not JSON ({exc})") from exc
    if not isinstance(recipe, dict) or recipe.get("v") != VERSION:
        version = recipe.get("v") if isinstance(recipe, dict) else None
        raise RebuildError(f"normalised zip stream version {version!r} is not {VERSION}")
    return end, recipe


def _settings(recipe: dict[str, Any]) -> Iterator[Setting]:
    runs = recipe.get("d")
    if not isinstance(runs, list):
        raise RebuildError("the trailer has no deflate settings")
    for run in runs:
        if not (isinstance(run, list) and len(run) == 3 and all(isinstance(v, int) for v in run)):
            raise RebuildError(f"malformed deflate setting run {run!r}")
        count, level, mem = run
        if not (1 <= level <= 9 and (1 <= mem <= 9 or mem == GNU)):
            raise RebuildError(f"deflate setting level {level}, memLevel {mem} is out of range")
        for _ in range(count):
            yield level, mem


def _byte(src: BinaryIO) -> int:
    data = src.read(1)
    if not data:
        raise RebuildError("the stream ends inside a segment header")
    return data[0]


def _varint(src: BinaryIO) -> int:
    value = 0
    for _ in range(10):
        b = _byte(src)
        value = (value << 7) | (b & 0x7F)
        if not b & 0x80:
            return value
    raise RebuildError("malformed segment length")
