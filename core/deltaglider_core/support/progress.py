"""Progress lines for long work: done/total objects, bytes, rate and ETA, one line every few seconds."""

from __future__ import annotations

import threading
import time
from typing import Any, Protocol


class LogLike(Protocol):
    """What the engine needs of a logger: stdlib ``logging.Logger`` and Airflow's task logger both fit."""

    def info(self, msg: str, /, *args: Any) -> Any: ...

    def warning(self, msg: str, /, *args: Any) -> Any: ...

    def error(self, msg: str, /, *args: Any) -> Any: ...


def human_bytes(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(count) < 1024 or unit == "TiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    raise AssertionError("unreachable")


class Progress:
    """Thread-safe counter that logs at most every ``interval`` seconds (and once at the end)."""

    def __init__(
        self,
        label: str,
        total_objects: int,
        total_bytes: int | None,
        logger: LogLike,
        interval: float = 5.0,
    ) -> None:
        self.label = label
        self.total_objects = total_objects
        self.total_bytes = total_bytes
        self.log = logger
        self.interval = interval
        self.done_objects = 0
        self.done_bytes = 0
        self._start = time.monotonic()
        self._last = self._start
        self._lock = threading.Lock()

    def advance(self, objects: int = 1, nbytes: int = 0) -> None:
        with self._lock:
            self.done_objects += objects
            self.done_bytes += nbytes
            now = time.monotonic()
            if now - self._last < self.interval:
                return
            self._last = now
            line = self.line(now)
        self.log.info(line)

    def line(self, now: float | None = None) -> str:
        elapsed = max((now or time.monotonic()) - self._start, 1e-9)
        rate = self.done_objects / elapsed
        remaining = self.total_objects - self.done_objects
        eta = f"{remaining / rate:.0f}s" if rate > 0 and self.total_objects else "?"
        total = f"/{human_bytes(self.total_bytes)}" if self.total_bytes is not None else ""
        of_total = f"/{self.total_objects}" if self.total_objects else ""
        return (
            f"{self.label}: {self.done_objects}{of_total} objects, "
            f"{human_bytes(self.done_bytes)}{total}, {rate:.1f} objects/s, "
            f"{human_bytes(self.done_bytes / elapsed)}/s, ETA {eta}"
        )

    def finish(self) -> None:
        self.log.info(self.line() + " (done)")
