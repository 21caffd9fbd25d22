"""Key selection shared by sync and migrate: include/exclude globs and shards."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from fnmatch import fnmatchcase

from deltaglider_core.errors import InvalidLocation

_SHARD_RE = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


def selected(relative: str, include: Sequence[str] | None, exclude: Sequence[str] | None) -> bool:
    """True when ``relative`` matches an include glob (or there are none) and no exclude glob."""
    name = relative.rpartition("/")[2]

    def hit(patterns: Sequence[str]) -> bool:
        return any(fnmatchcase(relative, p) or fnmatchcase(name, p) for p in patterns)

    if include and not hit(include):
        return False
    return not (exclude and hit(exclude))


def parse_shard(shard: str | None = None, index: int | None = None, count: int | None = None) -> tuple[int, int]:
    """``"3/16"`` or (index, count) -> (3, 16); no shard -> (0, 1)."""
    if shard is not None:
        match = _SHARD_RE.match(str(shard))
        if not match:
            raise InvalidLocation(f"Invalid shard {shard!r}: expected 'INDEX/COUNT', e.g. '3/16'.")
        index, count = int(match.group(1)), int(match.group(2))
    if index is None and count is None:
        return 0, 1
    if index is None or count is None or count < 1 or not 0 <= index < count:
        raise InvalidLocation(f"Invalid shard index={index} count={count}: need 0 <= index < count.")
    return index, count


def shard_list(count: int) -> list[str]:
    """Every shard of a ``count``-way split, for ``.expand(shard=...)``."""
    if count < 1:
        raise InvalidLocation(f"Invalid shard count {count}: need at least 1.")
    return [f"{i}/{count}" for i in range(count)]


def shard_of(group_key: str, count: int) -> int:
    """Stable shard number of a group key (same on every worker and Python version)."""
    digest = hashlib.sha256(group_key.encode()).digest()
    return int.from_bytes(digest[:8], "big") % count
