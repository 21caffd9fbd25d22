"""Streaming file digests."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from deltaglider_core.errors import SourceChanged

CHUNK = 1 << 20


@dataclass(frozen=True)
class FileDigest:
    size: int
    sha256: str
    md5: str
    part_md5s: tuple[str, ...] = ()  # one per part, when the file goes up in parts (``part_size`` given)
    stamp: tuple[int, ...] = ()  # what ``os.stat`` said of the file when it was hashed (see require_unchanged)


def _stamp(stat: os.stat_result) -> tuple[int, ...]:
    """What changes whenever a file's bytes do: size, mtime and ctime (ns), inode and device. A writer can set
    mtime back; ctime it cannot."""
    return stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino, stat.st_dev


def digest_file(path: Path, part_size: Callable[[int], int | None] | None = None) -> FileDigest:
    """SHA-256, MD5 and size of a file in one streaming pass; with ``part_size`` (the part size an upload of
    that many bytes uses, None for one PUT) the MD5 of each part too. SourceChanged when the file changes
    while it is read."""
    sha = hashlib.sha256()
    md5 = hashlib.md5(usedforsecurity=False)
    size = 0
    with open(path, "rb") as handle:
        before = _stamp(os.fstat(handle.fileno()))
        part = part_size(before[0]) if part_size is not None else None
        parts: list[str] = []
        piece = hashlib.md5(usedforsecurity=False)
        while chunk := handle.read(CHUNK if part is None else min(CHUNK, part - size % part)):
            sha.update(chunk)
            md5.update(chunk)
            size += len(chunk)
            if part is not None:
                piece.update(chunk)
                if size % part == 0:
                    parts.append(piece.hexdigest())
                    piece = hashlib.md5(usedforsecurity=False)
        if part is not None and size % part:
            parts.append(piece.hexdigest())
        if _stamp(os.fstat(handle.fileno())) != before or size != before[0]:
            raise SourceChanged(changed_message(path, "while it was hashed"))
    return FileDigest(size, sha.hexdigest(), md5.hexdigest(), tuple(parts), before)


def changed_message(path: Path, when: str) -> str:
    return (
        f"{path} changed {when} (its size, modification or change time moved): it is still being written. "
        "Nothing was stored for it. Upload it once it is complete (write to a temporary name and rename it into "
        "place, or wait for the producing task to finish)."
    )


def require_unchanged(path: Path, digest: FileDigest, when: str) -> None:
    """SourceChanged unless ``path`` is as it was when ``digest`` was taken (its stat stamp)."""
    try:
        now = _stamp(os.stat(path))
    except OSError:
        now = ()
    if digest.stamp and now != digest.stamp:
        raise SourceChanged(changed_message(path, when))


def sha256_file(path: Path) -> str:
    sha = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            sha.update(chunk)
    return sha.hexdigest()
