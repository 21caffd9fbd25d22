"""Decoder for xdelta3's DJW secondary compressor (``xdelta3 -S djw``): semi-static, multi-table Huffman.

Why our own code: no pip-installable library decodes this format, and the product must stay pure Python
(no compiler, MWAA). Written from the format's description (xdelta3's ``xdelta3-djw.h`` and
``xdelta3-second.h`` describe it; nothing is copied) and checked against deltas that Debian's xdelta3 3.0.11
wrote (tests/fixtures/xdelta3, and fresh ones when that binary is installed).

The format, one self-contained bit stream per compressed section (no state crosses sections or windows):

* Bits are taken from each byte least significant first; a multi-bit field is read most significant first,
  and so is a Huffman code (canonical: per code length, codes are consecutive in symbol order).
* 3 bits: number of tables (groups) - 1. With more than one group, 5 bits: sector size / 5 - 1; the output
  is cut into sectors of that many bytes, each coded with one group's table. One group: one sector.
* The code-length code: 4 bits ``k``, then ``k + 7`` code lengths of 4 bits for the symbols
  RUN_0, RUN_1, MTF1, MTF2, ... (the rest have none).
* With it, the code lengths (0-20) of all groups' 256 byte values, ``256 * groups`` values, coded as
  move-to-front indexes with zero-runs written in bijective base 2 (RUN_0 adds 1<<s, RUN_1 adds 2<<s for
  the s-th run digit; a run repeats the front value). The MTF list starts as 0, 4, 5, 6, 7, 8, 9, 10, 3, 11,
  2, 12, 13, 1, 14, ..., 20. After the first group, a byte value whose length was 0 in the previous group
  is 0 here too and takes no code.
* With more than one group: ``groups + 1`` selector code lengths of 3 bits, then one group number per
  sector, MTF and run coded the same way (the MTF list starts as 0, 1, 2, ...).
* Then the sectors' bytes, each a Huffman code of its sector's table.
"""

from __future__ import annotations

from collections.abc import Sequence

from deltaglider_core.errors import CodecError

MAX_CODELEN = 20
CLEN_SYMBOLS = MAX_CODELEN + 2  # RUN_0, RUN_1, MTF 1..20
CLEN_MTF_START = (0, 4, 5, 6, 7, 8, 9, 10, 3, 11, 2, 12, 13, 1, 14, 15, 16, 17, 18, 19, 20)
TABLE_BITS = 10  # codes up to this long decode with one table lookup; longer ones bit by bit


class _Bits:
    """The section's bits, least significant first within each byte, through a small lookahead buffer."""

    def __init__(self, data: bytes, name: str) -> None:
        self.data = data
        self.name = name
        self.pos = 0  # next byte to load
        self.buf = 0
        self.count = 0  # valid bits in buf
        self.consumed = 0  # bits taken

    def fill(self, want: int) -> None:
        data, pos = self.data, self.pos
        while self.count < want and pos < len(data):
            self.buf |= data[pos] << self.count
            self.count += 8
            pos += 1
        self.pos = pos

    def take(self, n: int) -> None:
        if n > self.count:
            raise CodecError(f"{self.name}: DJW section ends inside a code (truncated or corrupt delta).")
        self.buf >>= n
        self.count -= n
        self.consumed += n

    def field(self, n: int) -> int:
        """An ``n``-bit number, most significant bit first."""
        self.fill(n)
        low = self.buf & ((1 << n) - 1)
        self.take(n)
        value = 0
        for i in range(n):
            value = (value << 1) | ((low >> i) & 1)
        return value


class _Code:
    """A canonical Huffman code over ``len(lengths)`` symbols."""

    def __init__(self, lengths: Sequence[int], name: str) -> None:
        self.name = name
        used = sorted((length, sym) for sym, length in enumerate(lengths) if length)
        if not used:
            self.max_len = 0
            self.table: list[int] = []
            self.slow: dict[tuple[int, int], int] = {}
            return
        self.max_len = used[-1][0]
        self.slow = {}  # (length, code) -> symbol
        code, prev = 0, used[0][0]
        for length, sym in used:
            code <<= length - prev
            prev = length
            self.slow[(length, code)] = sym
            code += 1
        if code > 1 << prev:
            raise CodecError(f"{name}: DJW code lengths oversubscribe the code (corrupt delta).")
        # One lookup for codes up to TABLE_BITS: index = the next TABLE_BITS stream bits (first bit lowest),
        # entry = symbol << 5 | length, or 0 for "longer code, decode bit by bit".
        table = [0] * (1 << TABLE_BITS)
        for (length, code_value), sym in self.slow.items():
            if length > TABLE_BITS:
                continue
            reversed_code = int(f"{code_value:0{length}b}"[::-1], 2)
            entry = (sym << 5) | length
            for high in range(1 << (TABLE_BITS - length)):
                table[reversed_code | (high << length)] = entry
        self.table = table

    def decode(self, bits: _Bits) -> int:
        bits.fill(MAX_CODELEN)
        if self.table:
            entry = self.table[bits.buf & ((1 << TABLE_BITS) - 1)]
            if entry and (entry & 31) <= bits.count:
                bits.take(entry & 31)
                return entry >> 5
        code = 0
        for length in range(1, min(self.max_len, bits.count) + 1):
            code = (code << 1) | ((bits.buf >> (length - 1)) & 1)
            sym = self.slow.get((length, code))
            if sym is not None:
                bits.take(length)
                return sym
        if bits.count < self.max_len:
            raise CodecError(f"{self.name}: DJW section ends inside a code (truncated or corrupt delta).")
        raise CodecError(f"{self.name}: invalid DJW code (corrupt delta).")


def _mtf_runs(bits: _Bits, code: _Code, mtf: list[int], count: int, skip: int, name: str) -> list[int]:
    """``count`` values coded as MTF indexes with bijective base-2 runs of the front value (see module doc)."""
    values: list[int] = []
    run = 0  # front values still to repeat
    pending = 0  # an MTF index decoded right after a run
    digit = 0  # position of the next run digit
    while len(values) < count:
        n = len(values)
        if skip and n >= skip and values[n - skip] == 0:
            values.append(0)
            continue
        if run:
            values.append(mtf[0])
            run -= 1
            continue
        if pending:
            if pending >= len(mtf):
                raise CodecError(f"{name}: DJW move-to-front index out of range (corrupt delta).")
            value = mtf.pop(pending)
            mtf.insert(0, value)
            values.append(value)
            pending = 0
            continue
        sym = code.decode(bits)
        if sym <= 1:
            run = (sym + 1) << digit
            digit += 1
        else:
            pending = sym - 1
            digit = 0
    if run:
        raise CodecError(f"{name}: DJW run longer than its section (corrupt delta).")
    return values


def decode(payload: bytes, size: int, name: str) -> bytes:
    """Decode one DJW-compressed section of ``size`` bytes."""
    if size <= 0:
        raise CodecError(f"{name}: DJW section of invalid size {size} (corrupt delta).")
    if size > 8 * len(payload):  # every byte out costs at least one bit in: refused before any table is built
        raise CodecError(f"{name}: DJW section of {len(payload)} bytes cannot hold {size} bytes (corrupt delta).")
    bits = _Bits(payload, name)
    groups = bits.field(3) + 1
    sector = (bits.field(5) + 1) * 5 if groups > 1 else size
    sectors = 1 + (size - 1) // sector
    extra = bits.field(4)
    cl_lengths = [bits.field(4) for _ in range(extra + 7)] + [0] * (CLEN_SYMBOLS - extra - 7)
    cl_code = _Code(cl_lengths, name)
    lengths = _mtf_runs(bits, cl_code, list(CLEN_MTF_START), 256 * groups, 256, name)
    if max(lengths) > MAX_CODELEN:
        raise CodecError(f"{name}: DJW code length over {MAX_CODELEN} (corrupt delta).")
    tables = [_Code(lengths[g * 256 : (g + 1) * 256], name) for g in range(groups)]
    if groups > 1:
        sel_code = _Code([bits.field(3) for _ in range(groups + 1)], name)
        chosen = _mtf_runs(bits, sel_code, list(range(groups + 1)), sectors, 0, name)
        if max(chosen) >= groups:
            raise CodecError(f"{name}: DJW sector names a table that does not exist (corrupt delta).")
    else:
        chosen = [0]
    out = bytearray()
    for index in range(sectors):
        table = tables[chosen[index]]
        for _ in range(min(sector, size - len(out))):
            out.append(table.decode(bits))
    if (bits.consumed + 7) // 8 != len(payload):
        raise CodecError(f"{name}: DJW section has {len(payload) - (bits.consumed + 7) // 8} unused bytes (corrupt).")
    return bytes(out)
