"""Which local files an upload sends, and under which key names.

A source is a path or a glob (``**`` recursive). Each file's key name is its file name, or with
``keep_paths`` its path below the glob's root (the directories before the first wildcard). Two files that
would get the same key are refused before anything is sent, naming both (``linux/tool.txt`` and
``windows/tool.txt`` would otherwise overwrite each other). A glob match that is a symlink leading out of
the glob's root is skipped with a warning (as ``sync`` does); a path given explicitly is used as given.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deltaglider_core.errors import InvalidLocation
from deltaglider_core.support.paths import inside, readable_file

_GLOB_CHARS = set("*?[")


@dataclass(frozen=True)
class Source:
    path: Path
    name: str  # the key below the destination prefix


def glob_root(pattern: str) -> Path:
    """The directories of ``pattern`` before its first wildcard (``/b/**/x/*.zip`` -> ``/b``)."""
    parts = Path(pattern).parts
    fixed = []
    for part in parts[:-1]:
        if _GLOB_CHARS & set(part):
            break
        fixed.append(part)
    return Path(*fixed) if fixed else Path(".")


def resolve_sources(
    source: str | Sequence[str], *, allow_empty: bool = False, keep_paths: bool = False, log: Any = None
) -> list[Source]:
    """Expand paths and globs into files with their key names, sorted, without repeats or collisions."""
    patterns = [source] if isinstance(source, str) else list(source)
    found: dict[str, Source] = {}
    for pattern in patterns:
        if not _GLOB_CHARS & set(pattern):
            path = readable_file(pattern)
            found.setdefault(os.path.abspath(path), Source(path, path.name))
            continue
        root = glob_root(pattern)
        for match in sorted(glob.glob(pattern, recursive=True)):
            path = Path(match)
            if not path.is_file():
                continue
            if path.is_symlink() and not inside(root, path):
                if log is not None:
                    log.warning("skipping %s: symlink to %s leaves %s", path, os.path.realpath(path), root)
                continue
            name = path.relative_to(root).as_posix() if keep_paths else path.name
            found.setdefault(os.path.abspath(path), Source(path, name))
    if not found and not allow_empty:
        raise InvalidLocation(
            f"No files match {patterns!r}: check the path or glob, or set allow_empty=True to succeed with no files."
        )
    _refuse_collisions(list(found.values()), keep_paths)
    return sorted(found.values(), key=lambda s: s.name)


def _refuse_collisions(sources: list[Source], keep_paths: bool) -> None:
    by_name: dict[str, list[Source]] = {}
    for item in sources:
        by_name.setdefault(item.name, []).append(item)
    clashes = {name: items for name, items in by_name.items() if len(items) > 1}
    if clashes:
        shown = "; ".join(f"{name!r} from {', '.join(str(i.path) for i in items)}" for name, items in clashes.items())
        fix = "rename the files or narrow the glob" if keep_paths else "set keep_paths=True to keep their folders"
        raise InvalidLocation(
            f"{len(clashes)} key name(s) would be written by more than one file, and all but one would be lost: "
            f"{shown}. Nothing was uploaded: {fix}."
        )
