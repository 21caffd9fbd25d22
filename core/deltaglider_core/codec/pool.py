"""Codec calls on every core: xdelta3's command-line code keeps its state in process-wide globals, so one
process runs one encode or decode at a time. :class:`ProcessRunner` runs the first call in the task process
as before and each concurrent one in a worker process of its own (a pool started on first need,
``workers - 1`` processes, shut down by ``close()``), so a single upload starts no process at all while
migrations, multi-file uploads, syncs and downloads with several threads use every core. Once the caller
announces parallel work (``warm()``: migrations, multi-file uploads, syncs, downloads), every call goes to a
worker (``workers`` of them, started at once): the wheel's encoder holds the GIL for its whole run, so an
encode in the task process would stall every other thread's transfers and hashing meanwhile.

The workers are ``python -m deltaglider_core.codec.worker`` processes (see that module for why not
``multiprocessing``), each answering one call at a time over its stdin/stdout. A worker that cannot start
is logged once with the reason, and from then on calls run in the task process. A worker that dies during a
call, answers something that is not a result, or does not answer within ``CALL_TIMEOUT_S`` is stopped and
replaced by the next call that needs one; its call fails with :class:`WorkerDied` and is not run again in the
task process (an input that kills a worker would take the task with it). Other workers and their calls go
on. Every wait is bounded: for an answer by ``CALL_TIMEOUT_S``, for a worker or for memory budget by the
calls ahead, which are bounded the same way.

Memory: every call reserves what its source window costs (:mod:`.budget`: an encode ~5 bytes per window
byte plus fixed tables, a decode less) from the store's budget and waits while the budget is spent, so the
budget bounds all parallel work together, not each call alone.

Where worker processes cannot start (a daemonic process, e.g. some Celery pools) the calls run in the task
process one at a time, as they always did; that is logged once.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import select
import subprocess
import sys
import threading
import time

from deltaglider_core.codec.budget import decode_cost, encode_cost
from deltaglider_core.errors import CodecError

log = logging.getLogger(__name__)


CALL_TIMEOUT_S = 3600.0  # the longest one encode or decode may take before its worker is stopped


class WorkerFailed(Exception):
    """A codec worker process could not start: the calls run in the task process instead."""


class WorkerDied(CodecError):
    """A codec worker died, stopped answering, or answered something that is not a result, during a call. The
    worker is replaced; the call is not run again in the task process (an input that kills a worker would kill
    the task), so it fails with this error."""


def worker_command(library_path: str) -> list[str]:
    return [sys.executable, "-m", "deltaglider_core.codec.worker", library_path]


class _Worker:
    """One ``codec_worker`` process, used by one thread at a time.

    Each request is ``[id, args]`` on a line; the answer ``[id, code, message]`` on a line, read from the raw
    pipe (nothing buffered out of sight) within the call's deadline. An answer with another id, more than one
    line, a line that does not parse, silence past the deadline or the end of the pipe: the worker is dead.
    """

    def __init__(self, command: list[str]) -> None:
        self.proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)
        self.calls = 0

    def call(self, args: list[str], timeout: float) -> tuple[int, str]:
        """Send one call and read its answer; WorkerDied (the process stopped) on anything but its answer in
        time."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        pid = self.proc.pid
        self.calls += 1
        try:
            self.proc.stdin.write((json.dumps([self.calls, args]) + "\n").encode())
            self.proc.stdin.flush()
            line = self._line(timeout)
        except OSError as exc:
            self.stop()
            raise WorkerDied(f"codec worker {pid} is gone ({exc})") from exc
        try:
            ident, code, message = json.loads(line)
            if ident != self.calls:
                raise ValueError(f"the answer to call {ident}, not {self.calls}")
            return int(code), str(message)
        except (ValueError, TypeError) as exc:
            self.stop()
            raise WorkerDied(f"codec worker {pid} answered {line[:80]!r}, not a result, and was stopped") from exc

    def _line(self, timeout: float) -> bytes:
        """The answer line, within ``timeout`` seconds in all (a partial line then silence is silence)."""
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        data = b""
        while b"\n" not in data:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([fd], [], [], max(0.0, left))
            if not ready:
                self.stop()
                raise WorkerDied(f"codec worker {self.proc.pid} did not answer within {timeout:.0f} s and was stopped")
            chunk = os.read(fd, 65536)
            if not chunk:
                raise WorkerDied(
                    f"codec worker {self.proc.pid} ended with exit status {self.proc.wait()} (killed for memory?)"
                )
            data += chunk
        line, _, rest = data.partition(b"\n")
        if rest:
            self.stop()
            raise WorkerDied(f"codec worker {self.proc.pid} answered more than one line, and was stopped")
        return line

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self.proc.kill()

    def close(self) -> None:
        if self.proc.stdin is not None:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


class _Workers:
    """Up to ``size`` worker processes, started when first needed; ``close()`` ends them."""

    def __init__(self, library_path: str, size: int) -> None:
        self.library_path = library_path
        self.size = size
        self._idle: list[_Worker] = []
        self._all: list[_Worker] = []
        self._lock = threading.Condition()
        self._closed = False

    def call(self, args: list[str]) -> tuple[int, str]:
        """Run the call on an idle worker, starting one while fewer than ``size`` run, else waiting for one."""
        with self._lock:
            while not self._idle and len(self._all) >= self.size and not self._closed:
                self._lock.wait()
            if self._closed:
                raise WorkerFailed("the codec workers were closed")
            worker = self._idle.pop() if self._idle else self._start()
        try:
            result = worker.call(args, CALL_TIMEOUT_S)
        except WorkerDied:  # only this worker goes: the next call that needs one starts a new one
            with self._lock:
                if worker in self._all:
                    self._all.remove(worker)
                self._lock.notify()
            worker.close()
            raise
        with self._lock:
            self._idle.append(worker)
            self._lock.notify()
        return result

    def prestart(self) -> None:
        """Start every worker now (each imports the codec while the caller gets on with its first call)."""
        with self._lock:
            while len(self._all) < self.size and not self._closed:
                self._idle.append(self._start())
            self._lock.notify_all()

    def _start(self) -> _Worker:
        """A new worker, counted (the caller holds the lock)."""
        try:
            worker = _Worker(worker_command(self.library_path))
        except OSError as exc:
            raise WorkerFailed(f"cannot start a codec worker process ({exc})") from exc
        self._all.append(worker)
        return worker

    def close(self) -> None:
        with self._lock:
            workers, self._all, self._idle = self._all, [], []
            self._closed = True
            self._lock.notify_all()
        for worker in workers:
            worker.close()

    @property
    def running(self) -> list[int]:
        """Process ids of the workers alive (for tests)."""
        with self._lock:
            return [w.proc.pid for w in self._all if w.proc.poll() is None]


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
        from deltaglider_core.codec.xdelta3 import LibraryRunner

        self.library_path = library_path
        self.workers = max(1, workers)
        self.budget = budget
        self._local = LibraryRunner(library_path)  # its process-wide lock says whether this process is free
        self._state = threading.Condition()
        self._reserved = 0
        self._running = 0
        self._pool: _Workers | None = None
        self._retired: list[_Workers] = []  # pools no longer given calls (a start failed); closed by close()
        self._pool_failed = False
        self._parallel = False  # warm(): parallel work, every call in a worker so this process keeps its GIL
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

    def _executor(self) -> _Workers | None:
        with self._state:
            if self._pool is None and not self._pool_failed and self.workers > 1:
                self._pool = _Workers(self.library_path, self.workers if self._parallel else self.workers - 1)
            return self._pool

    def _broken(self, pool: _Workers, exc: BaseException) -> None:
        """A worker could not start: no new ones from now on. The workers already running finish their calls
        (closed by ``close()``), so a call running on one of them is never cut short by another's failure."""
        with self._state:
            if self._pool is pool:
                self._pool = None
                self._retired.append(pool)
                self._unavailable(exc, level=logging.WARNING)

    def _unavailable(self, exc: BaseException, level: int = logging.INFO) -> None:
        """Worker processes cannot start here: every call runs in this process from now on (logged once)."""
        if not self._pool_failed:
            log.log(level, "codec worker processes unavailable (%s): encodes and decodes run one at a time", exc)
        self._pool_failed = True

    def run(self, args: list[str]) -> tuple[int, str]:
        cost = call_cost(args)
        self._admit(cost)
        try:
            done = None if self._parallel else self._local.try_run(args)
            if done is not None:
                return done
            pool = self._executor()
            if pool is not None:
                try:
                    result = pool.call(args)
                except WorkerFailed as exc:  # a worker could not start: this process from now on
                    self._broken(pool, exc)
                else:
                    self.remote_calls += 1
                    return result
            return self._local.run(args)
        finally:
            self._release(cost)

    def warm(self) -> None:
        """Parallel work is coming: from now on every call runs in a worker process (``workers`` of them, started
        now rather than on the first concurrent call), none in this process. An in-process encode holds the GIL
        for its whole run, which would stall every other thread's transfers and hashing meanwhile."""
        with self._state:
            self._parallel = True
            if self._pool is not None:
                self._pool.size = self.workers
        pool = self._executor()
        if pool is None:
            return
        try:
            pool.prestart()
        except WorkerFailed as exc:
            self._broken(pool, exc)

    @property
    def worker_pids(self) -> list[int]:
        """Process ids of the worker processes alive now (for tests and diagnostics)."""
        with self._state:
            pool = self._pool
        return pool.running if pool is not None else []

    def close(self) -> None:
        with self._state:
            pools = [p for p in (self._pool, *self._retired) if p is not None]
            self._pool, self._retired = None, []
        for pool in pools:
            pool.close()
