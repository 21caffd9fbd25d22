"""Decoder for xdelta3's FGK secondary compressor (``xdelta3 -S fgk``): adaptive Huffman coding.

Why our own code: no pip-installable library decodes it and the product stays pure Python. Written from
the FGK algorithm (Faller, Gallager, Knuth: "Dynamic Huffman Coding", J. Algorithms 6, 1985) and the facts
of xdelta3's framing (its ``xdelta3-fgk.h`` describes them; nothing is copied), and checked against deltas
written by Debian's xdelta3 3.0.11. xdelta3 marks its FGK coder "for demonstration purposes only"; it is a
default nowhere, and stock xdelta3 cannot read back its own FGK deltas of more than one window, so only
single-window streams are known to decode (the result is verified by SHA-256 like every read).

The stream: bits taken from each byte least significant first. Encoder and decoder grow the same tree:

* It starts as a single zero-weight leaf standing for all 256 byte values not yet seen; those are kept in a
  list in byte order.
* A byte is coded as its leaf's path from the root (1 = right child). An unseen byte is the zero leaf's path
  followed by its index in the unseen list, most significant bit first, in ``e`` bits if the list holds
  exactly ``2**e`` values and ``e + 1`` otherwise; none when only one value is left.
* A new byte splits the zero leaf: a new internal node takes its place, with the zero leaf as left child and
  the new byte's leaf as right child (the last unseen byte takes the zero leaf's place instead).
* Then, from the byte's leaf up to the root, each node of non-zero weight is first swapped with the leader
  of its block (unless that is the node itself or its parent), and its weight goes up by one. Nodes are kept
  in a sibling order, lowest weight first (the zero leaf first, the root last; a new pair, byte leaf then
  internal node, enters right after the zero leaf), and grouped into blocks of neighbours whose leader is
  the highest. Which block a node belongs to follows xdelta3's bookkeeping, which matters for the bits:
  a node that gains weight leaves its block (whose leader becomes its left neighbour if that one is in
  it) and joins its right neighbour's block if that has exactly the new weight and is not the root, else
  starts a block of its own; except that the node just right of the zero leaf (or, once every byte was
  seen, the leftmost node) keeps its block, and the zero leaf's parent, when its right child is its left
  neighbour, joins (with that child) its right neighbour's block on the same condition and nothing else.
  New nodes join their right neighbour's block when it has weight 1. Freed blocks are reused last-in
  first-out, as xdelta3 reuses them.
"""

from __future__ import annotations

from collections.abc import Iterator

from deltaglider_core.errors import CodecError

_NONE = -1
_MAX_DEPTH = 512  # a tree of 511 nodes is never deeper: a guard, never reached by a consistent tree


class FgkDecoder:
    """One adaptive tree; xdelta3 keeps one per section kind for a whole delta."""

    ZERO = 256  # the zero-weight leaf; byte values are leaves 0-255, internal nodes 257 and up

    def __init__(self) -> None:
        size = 2 * 256 + 1
        self.weight = [0] * size
        self.parent = [_NONE] * size
        self.left = [_NONE] * size  # children of internal nodes; leaves have none
        self.right = [_NONE] * size
        self.order = [self.ZERO]  # sibling order, lowest weight first
        self.where = [_NONE] * size  # node -> index in order
        self.where[self.ZERO] = 0
        self.root = self.ZERO
        self.unseen = list(range(256))
        self.next_internal = 257
        self.block = [_NONE] * size  # node -> block id
        self.lead: dict[int, int] = {}  # block id -> leader node
        self.free = list(range(4 * size))[::-1]  # block ids, next one to use last

    def _new_block(self, leader: int) -> int:
        block = self.free.pop()
        self.lead[block] = leader
        return block

    def _neighbour(self, node: int, step: int) -> int:
        at = self.where[node] + step
        return self.order[at] if 0 <= at < len(self.order) else _NONE

    def decode(self, payload: bytes, size: int, name: str) -> bytes:
        """Decode ``size`` bytes from ``payload``; every byte of the payload must be used."""
        out = bytearray()
        bits = _bit_iter(payload)
        used = 0
        left, right, zero = self.left, self.right, self.ZERO
        try:
            while len(out) < size:
                node = self.root
                depth = 0
                while left[node] != _NONE:
                    node = right[node] if next(bits) else left[node]
                    depth += 1
                    if depth > _MAX_DEPTH:
                        raise CodecError(f"{name}: FGK tree is inconsistent (corrupt delta).")
                used += depth
                if node == zero:
                    count = len(self.unseen)
                    index = 0
                    if count > 1:
                        width = count.bit_length() - (1 if count & (count - 1) == 0 else 0)
                        for _ in range(width):
                            index = (index << 1) | next(bits)
                        used += width
                    symbol = self.unseen[min(index, count - 1)]
                    self._add(symbol)
                else:
                    symbol = node
                self._increment(symbol)
                out.append(symbol)
        except StopIteration:
            raise CodecError(
                f"{name}: FGK section ends before its {size} bytes (truncated or corrupt delta)."
            ) from None
        if (used + 7) // 8 != len(payload):
            raise CodecError(f"{name}: FGK section has unused bytes (corrupt delta).")
        return bytes(out)

    def learn(self, data: bytes) -> None:
        """Update the tree with ``data`` as the encoder did for a section it then stored uncompressed."""
        for symbol in data:
            if self.weight[symbol] == 0 and symbol in self.unseen:
                self._add(symbol)
            self._increment(symbol)

    def _add(self, symbol: int) -> None:
        """An unseen byte: split the zero leaf (or, if it is the last unseen byte, take the zero leaf's place)."""
        zero = self.ZERO
        self.unseen.remove(symbol)
        if not self.unseen:
            self._replace(zero, symbol)
            self.order[self.where[zero]] = symbol
            self.where[symbol] = self.where[zero]
            self.where[zero] = _NONE
            after = self._neighbour(symbol, 1)
            self.block[symbol] = self.block[after] if self.weight[after] == 1 else self._new_block(symbol)
            return
        inner = self.next_internal
        self.next_internal += 1
        first = self.root == zero
        self._replace(zero, inner)
        self.left[inner], self.right[inner] = zero, symbol
        self.parent[zero] = self.parent[symbol] = inner
        at = self.where[zero] + 1
        self.order[at:at] = [symbol, inner]
        for i in range(at, len(self.order)):
            self.where[self.order[i]] = i
        if first:
            self.block[symbol] = self._new_block(symbol)
            self.block[inner] = self._new_block(inner)
        else:
            after = self._neighbour(inner, 1)
            self.block[inner] = self.block[after] if self.weight[after] == 1 else self._new_block(inner)
            self.block[symbol] = self.block[inner]

    def _replace(self, old: int, new: int) -> None:
        """Put ``new`` in ``old``'s place in the tree."""
        up = self.parent[old]
        self.parent[new] = up
        if up == _NONE:
            self.root = new
        elif self.left[up] == old:
            self.left[up] = new
        else:
            self.right[up] = new

    def _increment(self, node: int) -> None:
        weight, parent = self.weight, self.parent
        steps = 0
        while node != self.root:
            steps += 1
            if steps > _MAX_DEPTH:
                raise CodecError("FGK tree is inconsistent (corrupt delta).")
            w = weight[node]
            if w:
                leader = self.lead[self.block[node]]
                if leader != node and leader != parent[node]:
                    self._swap(node, leader)
                    self.lead[self.block[node]] = node
                self._promote(node)
            weight[node] = w + 1
            node = parent[node]
        weight[node] += 1

    def _promote(self, node: int) -> None:
        """Block bookkeeping for ``node``, the leader of its block, about to gain weight (see module doc)."""
        weight, block = self.weight, self.block
        before, after = self._neighbour(node, -1), self._neighbour(node, 1)
        own = block[node]
        joins = weight[node] == weight[after] - 1 and after != self.root
        child = self.left[node]
        if before == self.right[node] and child != _NONE and weight[child] == 0:  # the zero leaf's parent
            if joins:
                self.free.append(own)
                block[node] = block[before] = block[after]
            return
        if before == (self.ZERO if self.unseen else _NONE):
            return
        if block[before] == own:
            self.lead[own] = before
        else:
            self.free.append(own)
        block[node] = block[after] if joins else self._new_block(node)

    def _swap(self, a: int, b: int) -> None:
        """Exchange two nodes' places in the tree and in the sibling order."""
        pa, pb = self.parent[a], self.parent[b]
        a_left, b_left = self.left[pa] == a, self.left[pb] == b
        if pa == pb:
            self.left[pa], self.right[pa] = self.right[pa], self.left[pa]
        else:
            if a_left:
                self.left[pa] = b
            else:
                self.right[pa] = b
            if b_left:
                self.left[pb] = a
            else:
                self.right[pb] = a
            self.parent[a], self.parent[b] = pb, pa
        ia, ib = self.where[a], self.where[b]
        self.order[ia], self.order[ib] = b, a
        self.where[a], self.where[b] = ib, ia


def _bit_iter(payload: bytes) -> Iterator[int]:
    for byte in payload:
        for shift in range(8):
            yield (byte >> shift) & 1
