"""Codec calls on every core: xdelta3's command-line code keeps its state in process-wide globals, so one
process runs one encode or decode at a time. :class:`ProcessRunner` runs the first call in the task process
as before and each concurrent one in a worker process of its own (a ``spawn`` pool, started on first need,
``workers - 1`` processes, shut down by ``close()``), so a single upload starts no process at all while
migrations, multi-file uploads, syncs and downloads with several threads use every core.

Memory: every call reserves what its source window costs (:mod:`.budget`: an encode ~5 bytes per window
byte plus fixed tables, a decode less) from the store's budget and waits while the budget is spent, so the
budget bounds all parallel work together, not each call alone.

Where worker processes cannot start (a daemonic process, e.g. some Celery pools) the calls run in the task
process one at a time, as they always did; that is logged once.
"""

from __future__ import annotations

import logging
import multiprocessing
import threading
from concurrent.futures import Executor, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from .budget import decode_cost, encode_cost
from .errors import CodecError

log = logging.getLogger("deltaglider_core")
_WORKER_RUNNER: dict[str, object] = {}


def _run_in_worker(library_path: str, args: list[str]) -> tuple[int, str]:
    """In a worker process: one codec call through that process's own copy of the library."""
    from .codec import LibraryRunner

    runner = _WORKER_RUNNER.get(library_path)
    if runner is None:
        runner = _WORKER_RUNNER[library_path] = LibraryRunner(library_path)
    assert isinstance(runner, LibraryRunner)
    return runner.run(args)


def call_cost(args: list[str]) -> int:
    """The memory a codec call with these xdelta3 arguments reserves."""
    window = int(args[args.index("-B") + 1]) if "-B" in args else 0
    return encode_cost(window) if "-e" in args else decode_cost(window)


class ProcessRunner:
    """A codec runner that spreads concurrent calls over processes within a memory budget (see module doc)."""

    name = "pyxdelta"
    extra_flags: tuple[str, ...] = ()
    library = True  # decodes need their secondary compression removed first, as with the in-process library

    def __init__(self, library_path: str, workers: int, budget: int) -> None:
        from .codec import LibraryRunner

        self.library_path = library_path
        self.workers = max(1, workers)
        self.budget = budget
        self._local = LibraryRunner(library_path)  # its process-wide lock says whether this process is free
        self._state = threading.Condition()
        self._reserved = 0
        self._running = 0
        self._pool: Executor | None = None
        self._pool_failed = False
        self.remote_calls = 0  # calls answered by a worker process (for tests and benchmarks)

    def _admit(self, cost: int) -> None:
        with self._state:
            while self._running and self._reserved + cost > self.budget:
                self._state.wait()
            self._reserved += cost
            self._running += 1

    def _release(self, cost: int) -> None:
        with self._state:
            self._reserved -= cost
            self._running -= 1
            self._state.notify_all()

    def _executor(self) -> Executor | None:
        with self._state:
            if self._pool is None and not self._pool_failed and self.workers > 1:
                try:
                    context = multiprocessing.get_context("spawn")
                    self._pool = ProcessPoolExecutor(max_workers=self.workers - 1, mp_context=context)
                except (OSError, AssertionError, ValueError) as exc:
                    self._unavailable(exc)
            return self._pool

    def _unavailable(self, exc: BaseException) -> None:
        """Worker processes cannot start here: every call runs in this process from now on (logged once)."""
        self._pool_failed = True
        log.info("codec worker processes unavailable (%s): encodes and decodes run one at a time", exc)

    def run(self, args: list[str]) -> tuple[int, str]:
        cost = call_cost(args)
        self._admit(cost)
        try:
            done = self._local.try_run(args)
            if done is not None:
                return done
            pool = self._executor()
            if pool is not None:
                try:
                    result = pool.submit(_run_in_worker, self.library_path, args).result()
                except BrokenProcessPool as exc:
                    raise CodecError(
                        "a codec worker process died (killed for memory?): lower memory_budget_mb or max_workers"
                    ) from exc
                except (OSError, AssertionError) as exc:  # the pool could not start a process: stay in-process
                    with self._state:
                        self._unavailable(exc)
                else:
                    self.remote_calls += 1
                    return result
            return self._local.run(args)
        finally:
            self._release(cost)

    def close(self) -> None:
        with self._state:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
