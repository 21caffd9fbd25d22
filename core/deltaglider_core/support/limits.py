"""Output budgets for reads: no stage of a read writes more than the object's declared sizes allow.

A bucket is input, and a hostile or damaged one can declare a 10-byte file whose 95-byte delta decodes to
32 MiB, or a reference whose contents inflate a thousandfold. Every stage of the read path (VCDIFF decode,
xz unsqueeze, inflating or normalising a reference, external decompression, the rebuild of the file) gets
one :class:`ReadBudget`, computed once from the object's metadata, and writes through a
:class:`LimitedWriter` with the stage's :class:`Cap` (or, for the VCDIFF decoder, is checked before it runs:
``codec.vcdiff.shape``). A
stage that would pass its limit stops with an :class:`IntegrityError` naming the object; the read path then
removes whatever the stage had written, so nothing partial is left.

The limits (docs/security.md lists them with their reasons):

- the file: exactly its ``dg-file-size`` when a VCDIFF decode writes it; 1% plus ``MARGIN`` more when it is
  rebuilt from contents (another deflate may differ a little: the SHA-256 check then says so);
- decompressed contents (content deltas): ``dg-content-size``, which this provider records; where no size is
  recorded (stock xdelta3's external compression, content deltas of earlier builds) the VCDIFF's own
  declaration, checked against free disk space before decoding;
- a plain (unsqueezed) content delta: ``DELTA_PER_BYTE`` times its contents plus ``MARGIN``;
- a reference's decompressed contents: ``dg-source-size`` (recorded by this provider), else only as far as the
  delta's windows reach into it (a quiet cap: the rest is never read), checked against free disk space.

``DEFLATE_MAX_RATIO`` is deflate's own maximum (1032:1), the fallback for content deltas without a recorded
contents size.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from deltaglider_core.errors import IntegrityError

_BYTE_COUNT = re.compile(r"[0-9]{1,20}")  # ASCII only: str.isdigit() takes "²", which int() refuses

DEFLATE_MAX_RATIO = 1032  # the most a deflate stream can expand (RFC 1951: 258 bytes from 2 bits)
MARGIN = 1 << 20  # headers, trailers, member tables: what a few small parts of an archive can add
REBUILD_SLACK = 100  # a rebuilt file may pass its declared size by 1/100 (and MARGIN) before the check
DELTA_PER_BYTE = 3  # VCDIFF's worst case: a 4-byte COPY costs an instruction, a size and a 5-byte address


class Enough(Exception):
    """A quiet cap was reached: the stage wrote exactly its limit and stops there (what follows is not needed)."""


@dataclass(frozen=True)
class ReadBudget:
    """How many bytes each stage of one read may write (see the module docstring)."""

    where: str  # the object, for messages: s3://bucket/key
    file: int | None  # the declared size (None: not declared; the VCDIFF's own declaration is checked instead)
    contents: int | None  # the recorded size of decompressed contents (None: the VCDIFF's declaration, checked)

    @property
    def rebuilt(self) -> int | None:
        """What a file rebuilt from contents may take: its declared size (or, undeclared, its contents' size)
        plus ``REBUILD_SLACK`` and ``MARGIN``, so a reader whose deflate differs a little still reaches the
        SHA-256 check, whose message says what differs."""
        base = self.file if self.file is not None else self.contents
        return None if base is None else base + base // REBUILD_SLACK + MARGIN

    @property
    def plain_delta(self) -> int:
        contents = self.contents if self.contents is not None else DEFLATE_MAX_RATIO * (self.file or 0) + MARGIN
        return DELTA_PER_BYTE * contents + MARGIN

    def exceeded(self, stage: str, limit: int) -> IntegrityError:
        return IntegrityError(
            f"{self.where}: {stage} would pass {limit} bytes, more than the object's recorded sizes allow "
            "(dg-file-size, dg-content-size, dg-source-size): the object or its reference is damaged or hostile. "
            "Nothing was written."
        )

    def cap(self, stage: str, limit: int | None) -> Cap | None:
        return None if limit is None else Cap(limit, self.exceeded(stage, limit))


@dataclass(frozen=True)
class Cap:
    """At most ``limit`` bytes into one file, else ``error``; a ``quiet`` cap instead keeps the first ``limit``
    bytes and raises :class:`Enough` (for a source read only as far as the delta reaches into it)."""

    limit: int
    error: IntegrityError
    quiet: bool = False


class Writable(Protocol):
    def write(self, data: bytes, /) -> object: ...


class LimitedWriter:
    """A binary sink that refuses to take more than its cap (raising the cap's error, or, quiet, taking what
    fits and raising :class:`Enough`); no cap: no limit."""

    def __init__(self, sink: BinaryIO, cap: Cap | None) -> None:
        self.sink = sink
        self.cap = cap
        self.written = 0

    def write(self, data: bytes) -> int:
        if self.cap is not None and self.written + len(data) > self.cap.limit:
            if not self.cap.quiet:
                raise self.cap.error
            fits = self.cap.limit - self.written
            self.sink.write(data[:fits])
            self.written += fits
            raise Enough
        self.written += len(data)
        return self.sink.write(data)


@contextmanager
def capped_open(path: Path, cap: Cap | None) -> Iterator[LimitedWriter]:
    """Open ``path`` for writing through a :class:`LimitedWriter`; when a hard cap is passed the file is removed
    (a quiet cap keeps the first ``limit`` bytes and lets :class:`Enough` through)."""
    try:
        with open(path, "wb") as sink:
            yield LimitedWriter(sink, cap)
    except IntegrityError:
        path.unlink(missing_ok=True)
        raise


def byte_count(text: str | None) -> int | None:
    """``text`` as a byte count (ASCII digits, as S3 metadata and HTTP headers write them), else None."""
    if text is None or not _BYTE_COUNT.fullmatch(text):
        return None
    return int(text)
