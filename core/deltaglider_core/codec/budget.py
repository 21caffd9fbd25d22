"""The memory budget of a store's delta work, and the xdelta3 source window it allows.

Measured with the xdelta3 library this project runs (600 MB artifact, two versions): an encode holds about
4.5 bytes per byte of source window (``-B``) plus ~120 MB (4.8 GB at 1 GiB, 750 MB at 128 MiB, 270 MB at
32 MiB), a decode about 0.6 bytes per byte of window (640 MB, 170 MB, 75 MB); the delta was the same size
for all three windows, because versions of one artifact keep their layout and xdelta3's window slides with
the target. So the window is the largest power of two whose encode fits the budget, capped by the
reference's size; decodes use the same window, so a read never needs more memory than the write did.
Past what the budget allows, an artifact is still encoded, with the reduced window; if that delta is poor
the policy stores the file directly (``max_ratio``), as for any poor delta.

Default budget: half the cgroup memory limit when the process has one (Kubernetes pods, Celery containers),
else 1 GiB. ``DG_MEMORY_BUDGET_MB``, the ``memory_budget_mb`` connection extra or ``DeltaStore`` argument
set it explicitly.
"""

from __future__ import annotations

from pathlib import Path

from deltaglider_core.errors import DeltaGliderError

MIB = 1 << 20
DEFAULT_BUDGET = 1024 * MIB
ENCODE_BYTES_PER_WINDOW_BYTE = 5  # 4.5 measured, rounded up
ENCODE_OVERHEAD = 128 * MIB  # tables and buffers that do not scale with the window: ~120 MB measured
MIN_WINDOW = 1 * MIB
MAX_WINDOW = 1 << 31
_CGROUP_FILES = (
    Path("/sys/fs/cgroup/memory.max"),  # cgroup v2
    Path("/sys/fs/cgroup/memory/memory.limit_in_bytes"),  # cgroup v1
)
_NO_LIMIT = 1 << 60  # cgroup v1 reports "unlimited" as a huge number


def cgroup_limit(files: tuple[Path, ...] = _CGROUP_FILES) -> int | None:
    """The memory limit of this process's cgroup in bytes, or None when there is none (or it is unreadable)."""
    for path in files:
        try:
            text = path.read_text().strip()
        except OSError:
            continue
        if text == "max":
            return None
        try:
            value = int(text)
        except ValueError:
            continue
        return value if 0 < value < _NO_LIMIT else None
    return None


def default_budget(files: tuple[Path, ...] = _CGROUP_FILES) -> int:
    limit = cgroup_limit(files)
    return limit // 2 if limit is not None else DEFAULT_BUDGET


def budget_from(megabytes: int | str | None, *, what: str = "memory_budget_mb") -> int:
    """Bytes of budget from a megabyte setting (None: the default)."""
    if megabytes is None or megabytes == "":
        return default_budget()
    try:
        value = int(megabytes)
    except (TypeError, ValueError) as exc:
        raise DeltaGliderError(f"{what}={megabytes!r} is not a whole number of megabytes.") from exc
    if value < 64:
        raise DeltaGliderError(f"{what}={value} is too small: delta work needs at least 64 MB (e.g. 256).")
    return value * MIB


def full_window(source_size: int) -> int:
    """A power-of-two window that covers the whole reference (what an unbounded encode would use)."""
    window = MIN_WINDOW
    while window < source_size and window < MAX_WINDOW:
        window <<= 1
    return window


def budget_window(budget: int) -> int:
    """The largest power-of-two window whose encode fits ``budget`` bytes."""
    room = max(budget - ENCODE_OVERHEAD, 0) // ENCODE_BYTES_PER_WINDOW_BYTE
    window = MIN_WINDOW
    while window * 2 <= room and window < MAX_WINDOW:
        window <<= 1
    return window


def encode_cost(window: int) -> int:
    """Memory an encode with this source window holds (measured, rounded up)."""
    return ENCODE_BYTES_PER_WINDOW_BYTE * window + ENCODE_OVERHEAD


def decode_cost(window: int) -> int:
    """Memory a decode with this source window holds (0.6 bytes per window byte measured, rounded up)."""
    return window + 64 * MIB


def budgeted_window(source_size: int, budget: int) -> int:
    """The window for a reference of ``source_size`` bytes under ``budget``."""
    return min(full_window(source_size), budget_window(budget))
