"""Run a child process and report its output, wall time, CPU time and peak RSS (from wait4, the whole process)."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from dataclasses import dataclass
from typing import Any


@dataclass
class ChildResult:
    returncode: int
    stdout: str
    stderr: str
    wall_s: float
    peak_rss_mb: float
    cpu_s: float = 0.0  # user + system, the child's and that of its own children it waited for

    def last_json(self) -> dict[str, Any]:
        for line in reversed(self.stdout.strip().splitlines()):
            if line.startswith("{"):
                return dict(json.loads(line))
        raise RuntimeError(f"no JSON line in output; stderr: {self.stderr[-2000:]}")


def run_measured(args: list[str], env: dict[str, str] | None = None, cwd: str | None = None) -> ChildResult:
    """Like run_child, but with the child's own peak RSS (ru_maxrss from wait4) and CPU time."""
    started = time.perf_counter()
    with open(os.devnull, "rb") as devnull:
        proc = subprocess.Popen(
            args, env=env, cwd=cwd, stdin=devnull, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        out_chunks: list[str] = []
        err_chunks: list[str] = []

        def pump(stream: Any, sink: list[str]) -> None:
            sink.append(stream.read())

        threads = [threading.Thread(target=pump, args=(proc.stdout, out_chunks)),
                   threading.Thread(target=pump, args=(proc.stderr, err_chunks))]  # fmt: skip
        for t in threads:
            t.start()
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        for t in threads:
            t.join()
    wall = time.perf_counter() - started
    cpu = usage.ru_utime + usage.ru_stime
    return ChildResult(proc.returncode, "".join(out_chunks), "".join(err_chunks), wall, usage.ru_maxrss / 1024, cpu)
