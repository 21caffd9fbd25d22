"""The normalised stream of a zip container, and the delta that carries it (format: docs/format.md).

:mod:`.zip_content` writes these streams from archives; this module holds what both sides share: the segment
layout and its writer, the plan that travels in front of a zip content delta, and the rebuild of the exact
archive from a target's stream (streaming, 1 MiB pieces; deflate by zlib or, where recorded, GNU gzip).
"""

from __future__ import annotations

import json
import shutil
import struct
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

from deltaglider_core.codec.vcdiff import varint_bytes
from deltaglider_core.content import gzip_content
from deltaglider_core.content.gzip_content import GNU, Setting
from deltaglider_core.support.limits import Cap, Writable, capped_open

VERSION = 1
MAGIC = b"DGZIPN\x00\x01"
DELTA_MAGIC = b"DGZIPD\x00\x01"
RAW, DEFLATED, GZ_DEFLATED, GZ_STORED, TRAILER = 0, 1, 2, 3, 0xFF
CHUNK = gzip_content.CHUNK


class StreamDamaged(Exception):
    """The normalised stream cannot be turned back into the archive (the message says why)."""


CONTENT, INNER = 1, 2  # forms a reference member is expanded into: its decompressed bytes, a nested gzip's contents
Plan = dict[str, int]  # member name -> the forms (bits) the reference's stream holds it in, beside its bytes


def pack_plan(plan: Plan) -> bytes:
    """The plan as it travels in front of the delta (zlib-compressed JSON, names sorted)."""
    return zlib.compress(json.dumps(sorted(plan.items()), separators=(",", ":")).encode(), 9)


def write_delta(plan: Plan, vcdiff: Path, out: Path) -> None:
    """The stored delta: ``DELTA_MAGIC``, the packed plan's length (4 bytes, big-endian), the plan, the VCDIFF."""
    packed = pack_plan(plan)
    with open(out, "wb") as sink, open(vcdiff, "rb") as src:
        sink.write(DELTA_MAGIC + struct.pack(">I", len(packed)) + packed)
        shutil.copyfileobj(src, sink, CHUNK)


def read_delta(delta: Path, vcdiff: Path) -> Plan:
    """Split a stored delta into its plan (returned) and its VCDIFF (written to ``vcdiff``)."""
    with open(delta, "rb") as src:
        head = src.read(len(DELTA_MAGIC) + 4)
        if len(head) < len(DELTA_MAGIC) + 4 or head[: len(DELTA_MAGIC)] != DELTA_MAGIC:
            raise StreamDamaged("the delta does not start with its reference plan")
        (length,) = struct.unpack(">I", head[len(DELTA_MAGIC) :])
        plan = unpack_plan(src.read(length))
        with open(vcdiff, "wb") as sink:
            shutil.copyfileobj(src, sink, CHUNK)
    return plan


MAX_PLAN = 64 << 20  # a plan names members and their forms: tens of bytes each, far below this for any zip


def unpack_plan(data: bytes) -> Plan:
    try:
        inflater = zlib.decompressobj()
        text = inflater.decompress(data, MAX_PLAN)
        if inflater.unconsumed_tail:
            raise ValueError(f"it inflates past {MAX_PLAN} bytes")
        items = json.loads(text)
        return {str(name): int(forms) for name, forms in items}
    except (zlib.error, ValueError, TypeError) as exc:
        raise StreamDamaged(f"the reference plan is damaged ({exc})") from exc


def range_chunks(src: BinaryIO, start: int, length: int) -> Iterator[bytes]:
    src.seek(start)
    while length > 0:
        chunk = src.read(min(CHUNK, length))
        if not chunk:
            raise StreamDamaged(f"{src.name}: ends inside a member")
        length -= len(chunk)
        yield chunk


class Writer:
    """Appends segments, merging adjacent raw bytes into one segment."""

    def __init__(self, sink: Writable) -> None:
        self.sink = sink
        self.pending: list[tuple[BinaryIO, int, int]] = []  # (file, start, length) ranges, read at flush
        self.pending_size = 0

    def raw_range(self, src: BinaryIO, start: int, length: int) -> None:
        if length > 0:
            self.pending.append((src, start, length))
            self.pending_size += length

    def flush_raw(self) -> None:
        if not self.pending:
            return
        self.sink.write(bytes([RAW]) + varint_bytes(self.pending_size))
        for piece in self.pending:
            for chunk in range_chunks(*piece):
                self.sink.write(chunk)
        self.pending, self.pending_size = [], 0

    def segment(self, kind: int, payload: Path, prefix: bytes = b"") -> None:
        self.flush_raw()
        self.sink.write(bytes([kind]) + varint_bytes(len(prefix) + payload.stat().st_size) + prefix)
        with open(payload, "rb") as f:
            shutil.copyfileobj(f, self.sink, CHUNK)

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


def rebuild(normalised: Path, out: Path, work: Path, cap: Cap | None = None) -> str:
    """Write the archive the target's normalised stream describes; return what deflated it (zlib's version, and
    GNU gzip's where used) for the caller's message should the SHA-256 differ. StreamDamaged when the stream is
    not one. ``work``: a directory for a member's content when the ``gzip`` program deflates it."""
    with open(normalised, "rb") as src:
        end, recipe = _read_trailer(src)
        settings = _settings(recipe)
        src.seek(0)
        if src.read(len(MAGIC)) != MAGIC:
            raise StreamDamaged("not a normalised zip stream (bad magic)")
        with capped_open(out, cap) as sink:
            while src.tell() < end:
                kind = _byte(src)
                length = _varint(src)
                if length > end - src.tell():
                    raise StreamDamaged(f"a segment of {length} bytes at offset {src.tell()} passes the stream's end")
                if kind == RAW:
                    for chunk in range_chunks(src, src.tell(), length):
                        sink.write(chunk)
                elif kind == DEFLATED:
                    _deflate_range(src, length, _next(settings), work, sink.write)
                elif kind in (GZ_DEFLATED, GZ_STORED):
                    _rebuild_gzip(src, length, kind, settings, work, sink)
                else:
                    raise StreamDamaged(f"unknown segment kind {kind} at offset {src.tell()}")
            if src.tell() != end or next(settings, None) is not None:
                raise StreamDamaged("the segments do not match the recorded deflate settings")
    return " and ".join(str(v) for v in (f"zlib {recipe.get('z', '?')}", recipe.get("g")) if v)


def _rebuild_gzip(
    src: BinaryIO, length: int, kind: int, settings: Iterator[Setting], work: Path, sink: Writable
) -> None:
    """A member that is a gzip file: header, inner deflate, trailer; deflated again unless the member is stored."""
    begin = src.tell()
    header_length = _varint(src)
    if header_length > length:
        raise StreamDamaged(f"a gzip header of {header_length} bytes in a segment of {length} at offset {begin}")
    header = src.read(header_length)
    content = length - (src.tell() - begin)
    inner = _next(settings)
    outer = _next(settings) if kind == GZ_DEFLATED else None
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
            for chunk in range_chunks(src, src.tell(), length):
                crc = zlib.crc32(chunk, crc)
                f.write(chunk)
        for data in gzip_content.deflate_chunks(piece, setting):
            emit(data)
        return crc
    compressor = zlib.compressobj(*_args(setting))
    for chunk in range_chunks(src, src.tell(), length):
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
        raise StreamDamaged("too short for a normalised zip stream")
    src.seek(total - 8)
    (length,) = struct.unpack(">Q", src.read(8))
    end = total - 8 - length
    if not len(MAGIC) <= end < total:
        raise StreamDamaged("the trailer length is out of range")
    src.seek(end)
    if _byte(src) != TRAILER:
        raise StreamDamaged("no trailer segment where the trailer length points")
    body = src.read(_varint(src))
    try:
        recipe = json.loads(body)
    except ValueError as exc:
        raise StreamDamaged(f"the trailer is not JSON ({exc})") from exc
    if not isinstance(recipe, dict) or recipe.get("v") != VERSION:
        version = recipe.get("v") if isinstance(recipe, dict) else None
        raise StreamDamaged(f"normalised zip stream version {version!r} is not {VERSION}")
    return end, recipe


def _settings(recipe: dict[str, Any]) -> Iterator[Setting]:
    runs = recipe.get("d")
    if not isinstance(runs, list):
        raise StreamDamaged("the trailer has no deflate settings")
    for run in runs:
        if not (isinstance(run, list) and len(run) == 3 and all(isinstance(v, int) for v in run)):
            raise StreamDamaged(f"malformed deflate setting run {run!r}")
        count, level, mem = run
        if not (1 <= level <= 9 and (1 <= mem <= 9 or mem == GNU)):
            raise StreamDamaged(f"deflate setting level {level}, memLevel {mem} is out of range")
        for _ in range(count):
            yield level, mem


def _byte(src: BinaryIO) -> int:
    data = src.read(1)
    if not data:
        raise StreamDamaged("the stream ends inside a segment header")
    return data[0]


def _next(settings: Iterator[Setting]) -> Setting:
    setting = next(settings, None)
    if setting is None:
        raise StreamDamaged("more deflated segments than recorded deflate settings")
    return setting


def _varint(src: BinaryIO) -> int:
    value = 0
    for _ in range(10):
        b = _byte(src)
        value = (value << 7) | (b & 0x7F)
        if not b & 0x80:
            return value
    raise StreamDamaged("malformed segment length")
