"""A codec worker process: ``python -m deltaglider_core.codec.worker LIBRARY`` answers codec calls, one at a
time, each request ``[call id, xdelta3 arguments]`` as JSON on a line of stdin, each answer ``[call id, exit code,
message]`` on a line of stdout. It ends when stdin closes.

Why not ``multiprocessing``: its ``spawn`` and ``forkserver`` children re-run the parent's ``__main__`` file
before they do anything, and under Airflow that is the ``airflow`` command, whose start-up in a task's child
fails on the deliberately unusable database URL Airflow gives tasks (seen on a real LocalExecutor
deployment); ``fork`` is unsafe in a process with threads. A child started with ``-m`` imports only this
package.
"""

from __future__ import annotations

import json
import sys


def serve(library_path: str) -> int:
    from deltaglider_core.codec.xdelta3 import LibraryRunner

    runner = LibraryRunner(library_path)
    for line in sys.stdin:
        ident, args = json.loads(line)
        try:
            code, message = runner.run([str(a) for a in args])
        except Exception as exc:  # noqa: BLE001 - reported to the caller, the worker stays up
            code, message = -1, f"{type(exc).__name__}: {exc}"
        sys.stdout.write(json.dumps([ident, code, message]) + "\n")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(serve(sys.argv[1]))
