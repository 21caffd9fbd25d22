"""Local paths derived from object keys: never outside the destination directory.

Object keys are attacker-controlled in a shared bucket; a key with ``..`` segments, an absolute path
or a backslash is refused instead of being written somewhere unexpected.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path, PurePosixPath

from deltaglider_core.errors import InvalidLocation


class UnsafeKey(InvalidLocation):
    """A key that would write outside the destination directory."""


def _name_max(root: Path) -> int:
    try:
        return int(os.pathconf(root if root.exists() else root.parent, "PC_NAME_MAX"))
    except (OSError, ValueError, AttributeError):
        return 255


def safe_local_path(dest_dir: Path, relative_key: str, *, bucket: str = "", key: str = "") -> Path:
    """``dest_dir / relative_key`` if it stays inside ``dest_dir``; UnsafeKey otherwise."""
    where = f"s3://{bucket}/{key or relative_key}"
    if "\0" in relative_key:
        raise UnsafeKey(f"Refusing {where!r}: the key contains a NUL character, which no local file name can hold.")
    limit = _name_max(dest_dir)
    long = [part for part in relative_key.split("/") if len(os.fsencode(part)) > limit]
    if long:
        raise UnsafeKey(
            f"Refusing {where}: the name {long[0][:40]!r}... is {len(os.fsencode(long[0]))} bytes, over the "
            f"local file system's limit of {limit}."
        )
    if "\\" in relative_key:
        raise UnsafeKey(f"Refusing {where}: the key contains a backslash, which could escape {dest_dir}.")
    pure = PurePosixPath(relative_key)
    if pure.is_absolute() or relative_key.startswith("/"):
        raise UnsafeKey(f"Refusing {where}: the key is an absolute path, which would escape {dest_dir}.")
    if any(part in ("..", ".") for part in relative_key.split("/")) or not relative_key:
        raise UnsafeKey(f"Refusing {where}: the key has '.' or '..' segments, which could escape {dest_dir}.")
    if "" in relative_key.split("/"):  # 'dup//a' or 'dup/a/' would land on 'dup/a', which another key may be
        raise UnsafeKey(
            f"Refusing {where}: the key has an empty segment ('//' or a trailing '/'), so its local path would be "
            "that of another key. Rename the object, or download it on its own to a file name you choose."
        )
    root = dest_dir.resolve()
    target = (root / Path(*pure.parts)).resolve()
    if root != target and root not in target.parents:
        raise UnsafeKey(f"Refusing {where}: it resolves to {target}, outside {root} (symlink in the path?).")
    return target


_UMASK_LOCK = threading.Lock()


def process_umask() -> int:
    """The process umask, read without changing it where the OS allows (Linux: /proc/self/status)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _UMASK_LOCK:  # elsewhere: set and restore (briefly process-wide, so serialised here)
        current = os.umask(0o022)
        os.umask(current)
    return current


def new_file_mode() -> int:
    """The mode an ordinary new file gets (0666 less the umask), for files written through a private temp."""
    return 0o666 & ~process_umask()


def plan_local_files(
    dest_dir: Path, items: list[tuple[str, str]], *, bucket: str
) -> tuple[list[tuple[str, Path]], list[str]]:
    """Where each ``(key, key relative to the prefix)`` can be written below ``dest_dir``, and why not for the rest.

    Refused (with a message naming the key), so the others can still be written: keys that would escape
    ``dest_dir`` or cannot be a local name (see :func:`safe_local_path`); a key that is also the folder of
    another key (``p/a`` and ``p/a/b``: a file and a folder cannot share a name on disk; the file is refused);
    a key whose place holds a local directory, or whose folder is a local file.
    """
    wanted = {rel for _, rel in items if "" not in rel.split("/")}  # keys with empty segments are refused below
    folders = {rel.rsplit("/", i)[0] for rel in wanted for i in range(1, rel.count("/") + 1)}
    planned: list[tuple[str, Path]] = []
    refused: list[str] = []
    for key, rel in items:
        where = f"s3://{bucket}/{key}"
        try:
            target = safe_local_path(dest_dir, rel, bucket=bucket, key=key)
        except UnsafeKey as exc:
            refused.append(str(exc))
            continue
        if rel in folders:
            refused.append(f"Refusing {where}: it is also the folder of other keys under {where}/, and a file and a "
                           "folder cannot share a name on disk.")  # fmt: skip
        elif target.is_dir():
            refused.append(f"Refusing {where}: a local directory {target} is in the way.")
        elif any(parent.is_file() for parent in target.parents if inside(dest_dir, parent) and parent != target):
            refused.append(f"Refusing {where}: a local file is in the way of its folder below {dest_dir}.")
        else:
            planned.append((key, target))
    return planned, refused


def readable_file(path: str | os.PathLike[str]) -> Path:
    """``path`` if it is a regular file this process may read; InvalidLocation naming it otherwise."""
    source = Path(path)
    if not source.is_file():
        raise InvalidLocation(f"Local file {str(source)!r} does not exist or is not a regular file: check the path.")
    if not os.access(source, os.R_OK):
        raise InvalidLocation(f"Local file {str(source)!r} is not readable: check its permissions.")
    return source


def inside(root: Path, path: Path) -> bool:
    """True if ``path`` (symlinks resolved) lies inside ``root``."""
    real_root = Path(os.path.realpath(root))
    real = Path(os.path.realpath(path))
    return real == real_root or real_root in real.parents
