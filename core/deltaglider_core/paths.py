"""Local paths derived from object keys: never outside the destination directory.

Object keys are attacker-controlled in a shared bucket; a key with ``..`` segments, an absolute path
or a backslash is refused instead of being written somewhere unexpected.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path, PurePosixPath

from .errors import InvalidLocation


class UnsafeKey(InvalidLocation):
    """A key that would write outside the destination directory."""


def safe_local_path(dest_dir: Path, relative_key: str, *, bucket: str = "", key: str = "") -> Path:
    """``dest_dir / relative_key`` if it stays inside ``dest_dir``; UnsafeKey otherwise."""
    where = f"s3://{bucket}/{key or relative_key}"
    if "\\" in relative_key:
        raise UnsafeKey(f"Refusing {where}: the key contains a backslash, which could escape {dest_dir}.")
    pure = PurePosixPath(relative_key)
    if pure.is_absolute() or relative_key.startswith("/"):
        raise UnsafeKey(f"Refusing {where}: the key is an absolute path, which would escape {dest_dir}.")
    if any(part in ("..", ".") for part in relative_key.split("/")) or not relative_key:
        raise UnsafeKey(f"Refusing {where}: the key has '.' or '..' segments, which could escape {dest_dir}.")
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


def inside(root: Path, path: Path) -> bool:
    """True if ``path`` (symlinks resolved) lies inside ``root``."""
    real_root = Path(os.path.realpath(root))
    real = Path(os.path.realpath(path))
    return real == real_root or real_root in real.parents
