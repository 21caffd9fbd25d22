"""Private temporary directories that a killed process cannot leave behind forever.

A store keeps decrypted references in a 0700 work directory and (by default) its encrypted cache in another;
``close()`` and an ``atexit`` hook remove them, but a task killed by the OOM killer or SIGKILL runs neither.
Each such directory therefore carries its owner's PID in its name (``deltaglider-work-<pid>-<random>``), and
the first store a process opens sweeps the directories of owners that are gone: never one whose owner is
alive (a PID in use by a process that started before the directory was made), never one of another user
the OS will not let us inspect, never one without a PID in its name (an older version's, whose owner cannot
be known).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
import threading
from pathlib import Path

_NAME = re.compile(r"^deltaglider-(?:work|cache)-(\d+)-")
_SWEPT: set[str] = set()  # per-process: temp roots already swept
_LOCK = threading.Lock()
log = logging.getLogger(__name__)


def private_dir(kind: str) -> Path:
    """A new 0700 directory ``deltaglider-<kind>-<pid>-<random>`` in the temp root (stale ones swept first)."""
    root = tempfile.gettempdir()
    sweep_once(root)
    path = Path(tempfile.mkdtemp(prefix=f"deltaglider-{kind}-{os.getpid()}-", dir=root))
    os.chmod(path, 0o700)
    return path


def sweep_once(root: str) -> None:
    with _LOCK:
        if root in _SWEPT:
            return
        _SWEPT.add(root)
    removed = sweep(Path(root))
    if removed:
        log.info("removed %d work/cache dir(s) left in %s by processes that are gone", len(removed), root)


def sweep(root: Path) -> list[Path]:
    """Remove the directories in ``root`` whose owning process is gone; return them."""
    removed: list[Path] = []
    try:
        entries = list(os.scandir(root))
    except OSError:
        return removed
    for entry in entries:
        match = _NAME.match(entry.name)
        if match is None or not entry.is_dir(follow_symlinks=False):
            continue
        pid = int(match.group(1))
        try:
            made = entry.stat(follow_symlinks=False).st_mtime
        except OSError:
            continue
        if pid == os.getpid() or owner_alive(pid, made):
            continue
        shutil.rmtree(entry.path, ignore_errors=True)
        removed.append(Path(entry.path))
    return removed


def owner_alive(pid: int, made: float) -> bool:
    """True unless process ``pid`` is certainly not the one that made a directory at ``made`` (epoch s)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's live process
    started = _start_time(pid)
    # A live process that started after the directory was made reuses the PID of its dead owner.
    return started is None or started <= made + 1.0


def _start_time(pid: int) -> float | None:
    """Start of process ``pid`` (epoch seconds) from /proc; None where that cannot be read."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            fields = stat.read().rpartition(")")[2].split()
        with open("/proc/stat", encoding="ascii") as system:
            boot = next(float(line.split()[1]) for line in system if line.startswith("btime "))
        return boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def scratch_dir(parent: Path) -> tempfile.TemporaryDirectory[str]:
    """A scratch directory for one operation inside ``parent`` (a store's private work directory)."""
    return tempfile.TemporaryDirectory(prefix="op-", dir=parent)
