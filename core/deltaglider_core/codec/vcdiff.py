"""Read VCDIFF that stock xdelta3 writes with secondary compression, for a decoder built without it.

Debian's and Ubuntu's ``xdelta3`` (3.0.11, the one DeltaGlider's own image installs) compresses the data,
instruction and address sections of each window with LZMA by default (``-S lzma``); ``-S djw`` and ``-S fgk``
choose xdelta3's own Huffman coders. The VCDIFF library in the ``pyxdelta`` wheel is built without them.
Rather than ship a compiled codec, :func:`strip_secondary` rewrites such a delta window by window into the
same delta with plain sections (RFC 3284 layout, the windows' checksums kept), which that library decodes.
Why our own code: no pip-installable library reads xdelta3's secondary-compression framing, and LZMA itself
comes from Python's standard ``lzma`` module, so nothing compiled is added.

Layout facts (RFC 3284 plus xdelta3's extensions): the header indicator's bit 0 (``VCD_SECONDARY``) is
followed by one compressor id byte (1 DJW, 2 LZMA, 16 FGK); each window's delta indicator marks which of
its data/inst/addr sections are compressed (bits 0/1/2); a compressed section is ``[decoded size varint]
[stream]``. xdelta3 keeps one secondary stream per section kind for the whole delta: for LZMA that is one xz
stream (LZMA2, no check) per kind, sync-flushed at each window, its header only in the first window that
compresses that kind; so the reader keeps one incremental decompressor per kind.

xdelta3's own Huffman coders (``-S djw``, ``-S fgk``; not a default anywhere) are decoded by :mod:`.djw` (one
self-contained stream per section) and :mod:`.fgk` (one adaptive tree per section kind for the whole delta).
xdelta3's FGK encoder also updates its tree with every section of 10 bytes or more that it then stores
uncompressed (the compressed form was not smaller); the reader does the same with those sections, which is
why it reads multi-window FGK deltas that stock xdelta3 itself rejects. An unknown compressor id raises
:class:`UnsupportedSecondary` (the codec then tries a stock ``xdelta3`` binary if one is installed).

Memory: one window's sections at a time (a window is at most xdelta3's ``-W``, 8 MiB by default, 16 MiB max:
larger ones are refused, as stock xdelta3 refuses them), and no section decodes to more than
``SECTION_PER_BYTE`` bytes per byte of its window's target, so a few hostile bytes cannot claim 256 MiB.
"""

from __future__ import annotations

import lzma
import os
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from deltaglider_core.codec import djw
from deltaglider_core.codec.fgk import FgkDecoder
from deltaglider_core.errors import CodecError

MAGIC = b"\xd6\xc3\xc4"
VCD_SECONDARY = 0x01
VCD_CODETABLE = 0x02
VCD_APPHEADER = 0x04
VCD_SOURCE = 0x01
VCD_TARGET = 0x02
VCD_ADLER32 = 0x04
SECTION_BITS = (0x01, 0x02, 0x04)  # data, inst, addr
SECTION_NAMES = ("data", "instructions", "addresses")
COMPRESSORS = {1: "djw", 2: "lzma", 16: "fgk"}
SECONDARY_MIN_INPUT = 10  # xdelta3 leaves shorter sections alone (its encoders never see them)
MAX_APPHEADER = 1 << 16  # xdelta3 writes two file names and two letters
HARD_MAX_WINDOW = 1 << 24  # xdelta3's XD3_HARDMAXWINSIZE: stock xdelta3 refuses larger target windows
SECTION_PER_BYTE = 6  # a section's decoded size per target byte at most (1 opcode + a 5-byte varint per byte)


class _Reader:
    def __init__(self, handle: BinaryIO, name: str) -> None:
        self.handle = handle
        self.name = name

    def exact(self, count: int) -> bytes:
        data = self.handle.read(count)
        if len(data) != count:
            raise CodecError(f"{self.name}: truncated VCDIFF (wanted {count} bytes, got {len(data)}).")
        return data

    def byte(self) -> int:
        return self.exact(1)[0]

    def varint(self) -> int:
        value = 0
        for _ in range(10):
            b = self.byte()
            value = (value << 7) | (b & 0x7F)
            if not b & 0x80:
                return value
        raise CodecError(f"{self.name}: malformed VCDIFF integer.")

    def at_end(self) -> bool:
        probe = self.handle.read(1)
        if not probe:
            return True
        self.handle.seek(-1, 1)
        return False


def varint_bytes(value: int) -> bytes:
    """RFC 3284 base-128 integer: big-endian 7-bit groups, high bit set on all but the last byte."""
    groups = [value & 0x7F]
    value >>= 7
    while value:
        groups.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(groups))


def _split_varint(buf: bytes, name: str) -> tuple[int, bytes]:
    value = 0
    for i, b in enumerate(buf[:10]):
        value = (value << 7) | (b & 0x7F)
        if not b & 0x80:
            return value, buf[i + 1 :]
    raise CodecError(f"{name}: malformed size of a compressed VCDIFF section.")


class _LzmaSections:
    """One continuous xz stream per section kind, as xdelta3's LZMA secondary compressor writes them."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._streams: dict[int, lzma.LZMADecompressor] = {}

    def decode(self, kind: int, payload: bytes, size: int) -> bytes:
        stream = self._streams.get(kind)
        if stream is None:
            stream = self._streams[kind] = lzma.LZMADecompressor(format=lzma.FORMAT_XZ)
        try:
            out = stream.decompress(payload, max_length=size + 1)
        except (lzma.LZMAError, EOFError) as exc:  # EOFError: data after the end of the xz stream
            raise CodecError(f"{self.name}: LZMA {SECTION_NAMES[kind]} section does not decode: {exc}") from exc
        if len(out) != size:
            raise CodecError(
                f"{self.name}: LZMA {SECTION_NAMES[kind]} section decodes to {len(out)} bytes, header says {size}."
            )
        return out

    def stored(self, kind: int, body: bytes) -> None:
        return None


class UnsupportedSecondary(CodecError):
    """A secondary compressor id this module does not know."""


class _DjwSections:
    def __init__(self, name: str) -> None:
        self.name = name

    def decode(self, kind: int, payload: bytes, size: int) -> bytes:
        return djw.decode(payload, size, f"{self.name} ({SECTION_NAMES[kind]})")

    def stored(self, kind: int, body: bytes) -> None:
        return None


class _FgkSections:
    """One adaptive tree per section kind, for the whole delta, fed as xdelta3's encoder fed its own."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.trees: dict[int, FgkDecoder] = {}

    def decode(self, kind: int, payload: bytes, size: int) -> bytes:
        return self.trees.setdefault(kind, FgkDecoder()).decode(payload, size, f"{self.name} ({SECTION_NAMES[kind]})")

    def stored(self, kind: int, body: bytes) -> None:
        if len(body) >= SECONDARY_MIN_INPUT:  # the encoder ran (updating its tree) but kept the section plain
            self.trees.setdefault(kind, FgkDecoder()).learn(body)


class _Sections(Protocol):
    def decode(self, kind: int, payload: bytes, size: int) -> bytes: ...

    def stored(self, kind: int, body: bytes) -> None: ...


def _decoder(compressor: int, name: str) -> _Sections:
    if compressor == 2:
        return _LzmaSections(name)
    if compressor == 1:
        return _DjwSections(name)
    if compressor == 16:
        return _FgkSections(name)
    raise UnsupportedSecondary(
        f"{name}: its sections are compressed with an unknown secondary compressor (id {compressor}); a stock "
        "xdelta3 binary may read it: install one on the worker (Debian/Ubuntu: apt-get install xdelta3) and retry."
    )


def secondary_compressor(path: Path) -> str | None:
    """The secondary compressor a VCDIFF file declares ('lzma', 'djw', 'fgk'), or None."""
    with open(path, "rb") as handle:
        head = handle.read(6)
    if len(head) < 5 or head[:3] != MAGIC or not head[4] & VCD_SECONDARY:
        return None
    return COMPRESSORS.get(head[5], f"id {head[5]}") if len(head) > 5 else "unknown"


@dataclass(frozen=True)
class Shape:
    """What a VCDIFF file declares, read from its window headers alone."""

    target_size: int  # the bytes a decode writes (the windows' target lengths: the decoder holds each to it)
    source_extent: int  # how far into the source its windows reach
    windows: int


def shape(path: Path) -> Shape:
    """Walk the window headers of VCDIFF ``path`` (seeking over their sections); CodecError on a malformed one
    or a target window larger than stock xdelta3 accepts (``HARD_MAX_WINDOW``)."""
    name = str(path)
    with open(path, "rb") as raw:
        size = os.fstat(raw.fileno()).st_size
        r = _Reader(raw, name)

        def skip(count: int) -> None:
            if raw.tell() + count > size:  # a length no file holds (up to 2^70): truncated, not an OS error
                raise CodecError(f"{name}: truncated VCDIFF (a length of {count} passes the end of the file).")
            raw.seek(count, 1)

        if r.exact(3) != MAGIC:
            raise CodecError(f"{name}: not a VCDIFF delta (bad magic).")
        r.byte()  # version
        indicator = r.byte()
        if indicator & VCD_SECONDARY:
            r.byte()
        for flag in (VCD_CODETABLE, VCD_APPHEADER):
            if indicator & flag:
                skip(r.varint())
        total = extent = windows = 0
        while not r.at_end():
            win = r.byte()
            if win & (VCD_SOURCE | VCD_TARGET):
                length, position = r.varint(), r.varint()
                if win & VCD_SOURCE:
                    extent = max(extent, position + length)
            encoding = r.varint()
            start = raw.tell()
            target = r.varint()
            if target > HARD_MAX_WINDOW:
                raise CodecError(
                    f"{name}: a VCDIFF window of {target} bytes, more than xdelta3 allows ({HARD_MAX_WINDOW}): "
                    "a corrupt or hostile delta."
                )
            total += target
            windows += 1
            raw.seek(start)
            skip(encoding)
    return Shape(total, extent, windows)


def section_limit(target_length: int) -> int:
    """The largest decoded section a window of ``target_length`` bytes can need (memory bound of decoders)."""
    return SECTION_PER_BYTE * target_length + 16


def application_header(path: Path) -> bytes | None:
    """The application header a VCDIFF file carries (RFC 3284 ``VCD_APPHEADER``), or None."""
    with open(path, "rb") as raw:
        r = _Reader(raw, str(path))
        if raw.read(3) != MAGIC:
            return None
        r.byte()  # version
        indicator = r.byte()
        if not indicator & VCD_APPHEADER:
            return None
        if indicator & VCD_SECONDARY:
            r.byte()
        if indicator & VCD_CODETABLE:
            r.exact(r.varint())
        length = r.varint()
        return r.exact(length) if length <= MAX_APPHEADER else None


def strip_secondary(src: Path, dest: Path) -> str:
    """Rewrite VCDIFF ``src`` into ``dest`` without secondary compression; return the compressor's name."""
    name = str(src)
    with open(src, "rb") as raw, open(dest, "wb") as out:
        r = _Reader(raw, name)
        if r.exact(3) != MAGIC:
            raise CodecError(f"{name}: not a VCDIFF delta (bad magic).")
        version = r.byte()
        indicator = r.byte()
        if not indicator & VCD_SECONDARY:
            raise CodecError(f"{name}: has no secondary compression to remove.")
        compressor = r.byte()
        decoder = _decoder(compressor, name)
        out.write(MAGIC + bytes([version, indicator & ~VCD_SECONDARY]))
        if indicator & VCD_CODETABLE:
            length = r.varint()
            out.write(varint_bytes(length) + r.exact(length))
        if indicator & VCD_APPHEADER:
            length = r.varint()
            out.write(varint_bytes(length) + r.exact(length))
        while not r.at_end():
            _rewrite_window(r, out, decoder)
    return COMPRESSORS.get(compressor, str(compressor))


def _rewrite_window(r: _Reader, out: BinaryIO, sections_of: _Sections) -> None:
    win = r.byte()
    prefix = bytes([win])
    if win & (VCD_SOURCE | VCD_TARGET):
        prefix += varint_bytes(r.varint()) + varint_bytes(r.varint())  # segment length, position
    r.varint()  # length of the delta encoding: recomputed below
    target_length = r.varint()
    if target_length > HARD_MAX_WINDOW:
        raise CodecError(f"{r.name}: VCDIFF window of {target_length} bytes, over xdelta3's maximum (corrupt delta).")
    delta_indicator = r.byte()
    lengths = [r.varint() for _ in SECTION_BITS]
    if any(n > 2 * section_limit(target_length) + 4096 for n in lengths):  # room for a compressor's framing
        raise CodecError(f"{r.name}: VCDIFF section length out of range (corrupt delta).")
    checksum = r.exact(4) if win & VCD_ADLER32 else b""
    sections = []
    for kind, (bit, length) in enumerate(zip(SECTION_BITS, lengths, strict=True)):
        body = r.exact(length)
        if delta_indicator & bit:
            size, payload = _split_varint(body, r.name)
            if size > section_limit(target_length):
                raise CodecError(
                    f"{r.name}: a compressed VCDIFF {SECTION_NAMES[kind]} section says it holds {size} bytes, more "
                    f"than a window of {target_length} bytes can use (corrupt delta)."
                )
            body = sections_of.decode(kind, payload, size)
        else:
            sections_of.stored(kind, body)
        sections.append(body)
    encoding = (
        varint_bytes(target_length)
        + bytes([delta_indicator & ~0x07])
        + b"".join(varint_bytes(len(s)) for s in sections)
        + checksum
    )
    length = len(encoding) + sum(len(s) for s in sections)
    out.write(prefix + varint_bytes(length) + encoding)
    for section in sections:
        out.write(section)


COPY_WINDOW = 8 << 20  # target bytes per window of a copy-everything delta (xdelta3's default window size)
_COPY_SIZE_0_MODE_0 = 19  # RFC 3284 default code table: COPY, size in the instruction stream, mode VCD_SELF


def write_identity(size: int, out: Path) -> None:
    """Write the VCDIFF delta that rebuilds a ``size``-byte source unchanged: per 8 MiB window, one COPY of the
    window's source segment (RFC 3284, no secondary compression, no application header). What an encoder
    would find for a file against itself, written without reading the file or holding any of it in memory."""
    with open(out, "wb") as handle:
        handle.write(MAGIC + b"\x00\x00")
        for offset in range(0, size, COPY_WINDOW):
            length = min(COPY_WINDOW, size - offset)
            instructions = bytes([_COPY_SIZE_0_MODE_0]) + varint_bytes(length)
            addresses = varint_bytes(0)
            encoding = (
                varint_bytes(length)  # target window length
                + b"\x00"  # delta indicator: nothing compressed
                + varint_bytes(0)  # data section length
                + varint_bytes(len(instructions))
                + varint_bytes(len(addresses))
                + instructions
                + addresses
            )
            handle.write(
                bytes([VCD_SOURCE])
                + varint_bytes(length)
                + varint_bytes(offset)
                + varint_bytes(len(encoding))
                + encoding
            )
