"""Content-level deltas for gzip files: delta the decompressed bytes, rebuild the exact original on read.

A byte-level delta of two gzip files is poor (a small change in the content rewrites the compressed stream
after it). Here the delta is taken between the *decompressed* contents, and what is needed to rebuild the
exact original file is recorded in the delta's metadata: the gzip header bytes as they were, and the zlib
deflate parameters (level, memory level, strategy) that reproduce its compressed stream byte for byte.
Those are found by trying, at write time, on the file itself: candidates are ruled out on a prefix, the
survivor is verified over the whole stream (and the CRC-32/size trailer), and only then is a content delta
used. A file no candidate reproduces (another deflate implementation, several gzip members, trailing bytes)
keeps the byte-level path.

Reading inflates the reference, applies the delta, and deflates with the recorded parameters; the result is
checked against the file's SHA-256 like every read. Deflate output can differ between zlib builds (zlib-ng
for one), so the zlib version that wrote the object is recorded too and named in the error when a reader's
rebuild does not match. Everything streams through files in 1 MiB pieces: no whole content in memory.

The format (``dg-content-encoding: gzip``, ``dg-gzip-rebuild``) is described in docs/format.md. Written here
because no library reproduces a given deflate stream; the parameter search follows what the format's own
description (RFC 1951/1952) and zlib's documented ``compressobj`` parameters allow.
"""

from __future__ import annotations

import base64
import functools
import json
import shutil
import struct
import subprocess
import zlib
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from deltaglider_core.support.limits import Cap, Writable, capped_open

CHUNK = 1 << 20
TRAILER = 8  # CRC-32 and size, after the deflate stream
PROBE = 256 << 10  # content bytes a candidate must reproduce before it is verified over the whole file
MAX_HEADER = 512  # longer gzip headers (huge names or extra fields) are not recorded in metadata
LEVELS = (9, 6, 1, 2, 3, 4, 5, 7, 8)  # the common ones first: Python's gzip writes 9, GNU gzip 6
MEM_LEVELS = (8, 9)
GNU = 0  # memLevel marker of a setting that is the GNU gzip program's deflate (its own, not zlib's)
GNU_LEVELS = (6, 9)  # gzip's default and --best
MAX_RATIO = 1032  # deflate's largest expansion (a 258-byte match per ~2 bits)
GZIP_HEADER = 10  # what ``gzip -c -n`` writes before the deflate stream (no name, no mtime)
ENCODING = "gzip"

_FTEXT, _FHCRC, _FEXTRA, _FNAME, _FCOMMENT = 1, 2, 4, 8, 16


class RecipeUnavailable(Exception):
    """The recorded parameters do not rebuild the original here (the message names what is needed)."""


@dataclass(frozen=True)
class Recipe:
    """How to turn the decompressed content back into the exact gzip file."""

    header: bytes
    level: int
    mem_level: int
    strategy: int
    zlib_version: str

    def to_meta(self) -> str:
        """The ``dg-gzip-rebuild`` metadata value (compact JSON, ASCII)."""
        return json.dumps(
            {
                "h": base64.b64encode(self.header).decode(),
                "l": self.level,
                "m": self.mem_level,
                "s": self.strategy,
                "z": self.zlib_version,
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_meta(cls, value: str) -> Recipe:
        """Parse ``dg-gzip-rebuild``; ValueError (or KeyError, TypeError) when it is not one this code wrote."""
        data = json.loads(value)
        recipe = cls(
            base64.b64decode(data["h"], validate=True), int(data["l"]), int(data["m"]), int(data["s"]), str(data["z"])
        )
        if not (0 <= recipe.level <= 9 and 0 <= recipe.mem_level <= 9 and 0 <= recipe.strategy <= 4):
            raise ValueError(f"level {recipe.level}, memLevel {recipe.mem_level}, strategy {recipe.strategy}")
        if len(recipe.header) > MAX_HEADER:
            raise ValueError(f"a {len(recipe.header)}-byte gzip header (at most {MAX_HEADER} are recorded)")
        return recipe


def header_length(path: Path) -> int | None:
    """Length of the gzip member header at the start of ``path`` (RFC 1952), or None if it is not one."""
    with open(path, "rb") as f:
        head = f.read(10)
        if len(head) < 10 or head[:3] != b"\x1f\x8b\x08" or head[3] & 0xE0:
            return None
        flags, length = head[3], 10
        if flags & _FEXTRA:
            extra = f.read(2)
            if len(extra) < 2:
                return None
            (size,) = struct.unpack("<H", extra)
            f.seek(size, 1)
            length += 2 + size
        for flag in (_FNAME, _FCOMMENT):
            if flags & flag:
                while True:
                    byte = f.read(1)
                    if not byte:
                        return None
                    length += 1
                    if byte == b"\x00":
                        break
        if flags & _FHCRC:
            length += 2
        return length if length <= f.seek(0, 2) else None


def _chunks(path: Path, start: int = 0) -> Iterator[bytes]:
    with open(path, "rb") as f:
        f.seek(start)
        while chunk := f.read(CHUNK):
            yield chunk


class BoundedInflate:
    """Raw inflate (RFC 1951) into ``sink``, at most CHUNK bytes out per call so a highly compressed piece never
    fills memory, keeping the CRC-32 and size of what came out, and stopping once that passes ``limit`` (a bomb
    that under-declares its size cannot fill the temp disk: nothing past the limit is written)."""

    def __init__(self, sink: Writable, limit: int) -> None:
        self.inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        self.sink = sink
        self.limit = limit
        self.crc = 0
        self.size = 0

    def feed(self, chunk: bytes) -> bool:
        """Inflate ``chunk``; False once the output passes the limit. Raises zlib.error on a corrupt stream."""
        pending = chunk
        while True:
            data = self.inflater.decompress(pending, CHUNK)
            self.crc, self.size = zlib.crc32(data, self.crc), self.size + len(data)
            if self.size > self.limit:
                return False
            self.sink.write(data)
            pending = self.inflater.unconsumed_tail
            if self.inflater.eof or (not pending and len(data) < CHUNK):
                return True


def inflate(path: Path, out: Path, cap: Cap | None = None) -> tuple[int, int] | None:
    """Decompress the single gzip member in ``path`` to ``out``: (header length, deflate stream length), or
    None when ``path`` is not exactly one gzip member with a matching CRC-32 and size trailer (or inflates
    past what its trailer allows)."""
    start = header_length(path)
    if start is None:
        return None
    used = 0
    tail = b""
    try:
        with capped_open(out, cap) as sink:
            stream = BoundedInflate(sink, _size_limit(path))
            for chunk in _chunks(path, start):
                if stream.inflater.eof:
                    tail += chunk
                    if len(tail) > TRAILER:
                        return None  # bytes after the trailer
                    continue
                if not stream.feed(chunk):
                    return None
                used += len(chunk) - len(stream.inflater.unused_data)
                tail = stream.inflater.unused_data
    except zlib.error:
        return None
    if not stream.inflater.eof or tail != struct.pack("<II", stream.crc, stream.size & 0xFFFFFFFF):
        return None  # truncated, several members, or bytes after the trailer
    return start, used


def recorded_size(path: Path) -> int:
    """The decompressed size a gzip file's trailer records (ISIZE: the size modulo 4 GiB); 0 if too short."""
    total = path.stat().st_size
    with open(path, "rb") as f:
        f.seek(max(total - 4, 0))
        tail = f.read(4)
    return int.from_bytes(tail, "little") if len(tail) == 4 else 0


def _size_limit(path: Path) -> int:
    """The most a gzip file may decompress to: its trailer's size where that is exact (deflate expands at
    most ~1032:1, so a file under 4 MiB cannot pass 4 GiB), else 1032 times the file."""
    total = path.stat().st_size
    bound = MAX_RATIO * total
    return recorded_size(path) if total >= 4 and bound < 1 << 32 else bound


def _compressor(level: int, mem_level: int, strategy: int = zlib.Z_DEFAULT_STRATEGY) -> zlib._Compress:
    return zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS, mem_level, strategy)


def find_recipe(original: Path, content: Path, header: int, stream: int) -> Recipe | None:
    """Deflate parameters that reproduce ``original``'s compressed stream from ``content``, verified over the
    whole stream; None when no candidate does."""
    with open(original, "rb") as f:
        head = f.read(header)
    if len(head) > MAX_HEADER:
        return None
    found = find_deflate(original, header, stream, content)
    if found is None:
        return None
    version = (gnu_gzip() or "gzip") if found[1] == GNU else zlib.ZLIB_RUNTIME_VERSION
    return Recipe(head, found[0], found[1], zlib.Z_DEFAULT_STRATEGY, version)


Setting = tuple[int, int]  # (level, memLevel); memLevel GNU: the ``gzip`` program at that level


def find_deflate(
    original: Path, offset: int, stream: int, content: Path, first: Sequence[Setting] = ()
) -> Setting | None:
    """The setting whose raw deflate of ``content`` is exactly the ``stream`` bytes of ``original`` at
    ``offset``: zlib candidates ruled out on a prefix, the survivor verified over the whole stream; then GNU
    gzip (levels 6 and 9) when the program is installed. ``first`` are tried before the others (the settings
    that matched earlier members of the same archive)."""
    with open(original, "rb") as f:
        f.seek(offset)
        expected_prefix = f.read(min(stream, PROBE * 2))
    with open(content, "rb") as f:
        probe = f.read(PROBE)
    zlib_candidates = [(lv, mem) for lv in LEVELS for mem in MEM_LEVELS]
    gnu_candidates = [(lv, GNU) for lv in GNU_LEVELS] if gnu_gzip() else []
    ordered = [c for c in first if c in zlib_candidates or c in gnu_candidates]
    ordered += [c for c in zlib_candidates + gnu_candidates if c not in ordered]
    whole = len(probe) < PROBE  # the probe is the whole content: a zlib match on it is the verification
    for setting in ordered:
        if setting[1] == GNU:
            if _reproduces(original, content, offset, stream, setting):
                return setting
            continue
        compressor = _compressor(*setting)
        produced = compressor.compress(probe)
        if whole:
            if produced + compressor.flush() == expected_prefix and len(expected_prefix) == stream:
                return setting
        elif expected_prefix.startswith(produced) and _reproduces(original, content, offset, stream, setting):
            return setting
    return None


def _reproduces(original: Path, content: Path, offset: int, stream: int, setting: Setting) -> bool:
    """Whether deflating ``content`` gives exactly the ``stream`` bytes at ``offset`` (compared as produced)."""
    with open(original, "rb") as f:
        f.seek(offset)
        remaining = stream
        chunks = deflate_chunks(content, setting)
        try:
            for data in chunks:
                if len(data) > remaining or f.read(len(data)) != data:
                    return False
                remaining -= len(data)
        finally:
            chunks.close()
        return remaining == 0


def deflate_chunks(content: Path, setting: Setting) -> Generator[bytes, None, None]:
    """The raw deflate stream of ``content`` with ``setting``, in pieces (zlib, or the GNU gzip program)."""
    if setting[1] == GNU:
        yield from _gnu_deflate(content, setting[0])
        return
    compressor = _compressor(*setting)
    for chunk in _chunks(content):
        yield compressor.compress(chunk)
    yield compressor.flush()


@functools.lru_cache(maxsize=1)
def gnu_gzip() -> str | None:
    """``gzip`` program's version line (e.g. ``gzip 1.12``) when it is GNU gzip on PATH, else None."""
    binary = shutil.which("gzip")
    if binary is None:
        return None
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=30, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    first_line = out.splitlines()[0].strip() if out else ""
    return first_line if first_line.startswith("gzip ") else None


def _gnu_deflate(content: Path, level: int) -> Iterator[bytes]:
    """GNU gzip's deflate stream: ``gzip -c -n -<level>`` without its 10-byte header and 8-byte trailer."""
    binary = shutil.which("gzip")
    if binary is None:
        raise RecipeUnavailable(
            "the GNU gzip program is needed and is not on PATH (Debian/Ubuntu: apt-get install gzip)"
        )
    with open(content, "rb") as stdin:
        proc = subprocess.Popen([binary, "-c", "-n", f"-{level}"], stdin=stdin, stdout=subprocess.PIPE)
    assert proc.stdout is not None
    try:
        head = b""
        while len(head) < GZIP_HEADER:
            piece = proc.stdout.read(GZIP_HEADER - len(head))
            if not piece:
                break
            head += piece
        held = b""
        while piece := proc.stdout.read(CHUNK):
            held += piece
            if len(held) > TRAILER:
                yield held[:-TRAILER]
                held = held[-TRAILER:]
        if proc.wait() != 0 or len(head) < GZIP_HEADER or len(held) != TRAILER:
            raise RecipeUnavailable(f"'gzip -c -{level}' failed (exit {proc.returncode})")
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stdout.close()
        proc.wait()


def rebuild(content: Path, recipe: Recipe, out: Path, cap: Cap | None = None) -> int:
    """Write the gzip file: the recorded header, ``content`` deflated with the recorded parameters, the
    CRC-32/size trailer. Returns the bytes written. The caller checks the SHA-256."""
    crc, size = 0, 0
    for chunk in _chunks(content):
        crc, size = zlib.crc32(chunk, crc), size + len(chunk)
    written = 0
    with capped_open(out, cap) as sink:
        sink.write(recipe.header)
        written += len(recipe.header)
        for data in deflate_chunks(content, (recipe.level, recipe.mem_level)):
            sink.write(data)
            written += len(data)
        trailer = struct.pack("<II", crc, size & 0xFFFFFFFF)
        sink.write(trailer)
        written += len(trailer)
    return written


def mismatch_message(recipe: Recipe) -> str:
    """What a reader needs when its rebuild differs from the original."""
    here = zlib.ZLIB_RUNTIME_VERSION
    if recipe.mem_level == GNU:
        return (
            f"it was written with {recipe.zlib_version} (the GNU gzip program) at level {recipe.level}, and "
            f"{gnu_gzip() or 'no GNU gzip program'} here did not reproduce it: read it where {recipe.zlib_version} "
            "is installed"
        )
    if here != recipe.zlib_version:
        return (
            f"it was written with zlib {recipe.zlib_version} deflate (level {recipe.level}, memLevel "
            f"{recipe.mem_level}) and this reader has zlib {here}, whose deflate output differs: read it where "
            f"Python's zlib is {recipe.zlib_version}"
        )
    return f"zlib {here} deflate (level {recipe.level}, memLevel {recipe.mem_level}) did not reproduce it"
