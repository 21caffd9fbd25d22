"""Encodes and decodes on every core: concurrent calls go to worker processes, within the memory budget."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from deltaglider_core import DeltaStore, StoreConfig
from deltaglider_core.codec.budget import MIB, encode_cost
from deltaglider_core.codec.pool import ProcessRunner
from deltaglider_core.codec.xdelta3 import LibraryRunner, XDelta3Codec

from tests.codec_workers import alive, pyxdelta_library


def test_concurrent_encodes_run_in_worker_processes_and_stay_exact(builds: Any, tmp_path: Path) -> None:
    runner = ProcessRunner(pyxdelta_library(), workers=2, budget=4096 * MIB)
    codec = XDelta3Codec(runner)
    pairs = [(builds(0), builds(v)) for v in (1, 2, 3, 4)]
    gate = threading.Barrier(2)

    def encode(i: int) -> Path:
        gate.wait() if i < 2 else None  # the first two start together: one must go to a worker process
        out = tmp_path / f"d{i}"
        codec.encode(pairs[i][0], pairs[i][1], out)
        return out

    try:
        with ThreadPoolExecutor(2) as pool:
            deltas = list(pool.map(encode, range(4)))
        pids = runner.worker_pids
        assert runner.remote_calls >= 1 and pids
        for i, delta in enumerate(deltas):
            codec.decode(pairs[i][0], delta, tmp_path / f"out{i}")
            assert (tmp_path / f"out{i}").read_bytes() == pairs[i][1].read_bytes()
    finally:
        codec.close()
    assert runner.worker_pids == [] and not any(alive(pid) for pid in pids)


def test_calls_wait_while_the_budget_is_spent() -> None:
    """Two calls that each cost the whole budget run one after the other, never together."""
    runner = ProcessRunner(pyxdelta_library(), workers=2, budget=encode_cost(16 * MIB))
    cost = encode_cost(16 * MIB)
    runner._admit(cost)  # the first call holds the whole budget
    admitted = threading.Event()

    def second() -> None:
        runner._admit(cost)
        admitted.set()
        runner._release(cost)

    thread = threading.Thread(target=second)
    thread.start()
    assert not admitted.wait(0.3)  # blocked while the first runs
    runner._release(cost)
    assert admitted.wait(5)
    thread.join()
    runner.close()


def test_store_close_stops_its_worker_processes(moto_s3: Any, builds: Any) -> None:
    store = DeltaStore(moto_s3.client, StoreConfig(max_workers=2))
    for i in range(2):
        store.put(builds(0, seed=i, name=f"app{i}"), moto_s3.bucket, f"s{i}/app{i}-1.0.0.zip")
    gate = threading.Barrier(2)

    def put(i: int) -> str:
        gate.wait()
        return store.put(builds(1, seed=i, name=f"app{i}"), moto_s3.bucket, f"s{i}/app{i}-1.0.1.zip").kind

    with LibraryRunner._lock, ThreadPoolExecutor(2) as pool:  # this process busy: the encodes go to workers
        assert list(pool.map(put, range(2))) == ["delta", "delta"]
    runner = store.codec.runner  # type: ignore[attr-defined]  # an XDelta3Codec
    pids = runner.worker_pids
    assert pids, "the concurrent put did not use a worker process"
    store.close()
    assert runner.worker_pids == [] and not any(alive(pid) for pid in pids)


def test_warm_up_starts_the_workers_before_any_call_and_close_ends_them(builds: Any, tmp_path: Path) -> None:
    store = DeltaStore.__new__(DeltaStore)  # only the codec is needed
    runner = ProcessRunner(pyxdelta_library(), workers=3, budget=4096 * MIB)
    store.codec = XDelta3Codec(runner)
    assert runner.worker_pids == []
    store.warm_up()
    pids = runner.worker_pids
    assert len(pids) == 3  # one per worker: parallel work keeps every call out of the task process (its GIL)
    store.warm_up()
    assert runner.worker_pids == pids  # started once
    store.codec.encode(builds(0), builds(1), tmp_path / "d")  # this process is free, the call still goes out
    assert runner.remote_calls == 1 and runner.worker_pids == pids
    runner.close()
    assert runner.worker_pids == [] and not any(alive(pid) for pid in pids)


MAIN_SCRIPT = """
import sys, threading
from pathlib import Path
from concurrent.futures import ThreadPoolExecutor

with open(sys.argv[1], "a") as marks:  # every execution of this file as a main module leaves a mark
    marks.write("ran\\n")
if __name__ != "__main__":
    raise SystemExit("a worker process re-ran the task's main module")  # as airflow's main does, in effect

from deltaglider_core.codec.xdelta3 import LibraryRunner, XDelta3Codec
from deltaglider_core.codec.pool import ProcessRunner
from deltaglider_core.codec.budget import MIB

library, source, targets, out = sys.argv[2], Path(sys.argv[3]), sys.argv[4].split(","), Path(sys.argv[5])
runner = ProcessRunner(library, workers=2, budget=4096 * MIB)
codec = XDelta3Codec(runner)
gate = threading.Barrier(2)

def encode(i):
    gate.wait()
    codec.encode(source, Path(targets[i]), out / f"d{i}")
    codec.decode(source, out / f"d{i}", out / f"t{i}")
    return (out / f"t{i}").read_bytes() == Path(targets[i]).read_bytes()

# This process's codec is busy (its lock held) while both calls run: they must go to worker processes, however
# the threads are scheduled (a loaded machine could otherwise run them one after the other in this process).
with LibraryRunner._lock, ThreadPoolExecutor(2) as pool:
    exact = list(pool.map(encode, range(2)))
codec.close()
print("remote", runner.remote_calls, "exact", all(exact))
"""


def test_worker_processes_do_not_rerun_the_tasks_main_module(builds: Any, tmp_path: Path) -> None:
    """Under Airflow the main module is the ``airflow`` command; a worker that re-ran it (``spawn``) died at
    start, seen on a real LocalExecutor deployment. The workers must start without running ``__main__``."""
    import subprocess
    import sys

    script, marks = tmp_path / "task_main.py", tmp_path / "marks.txt"
    script.write_text(MAIN_SCRIPT)
    targets = ",".join(str(builds(v)) for v in (1, 2))
    proc = subprocess.run(
        [sys.executable, str(script), str(marks), pyxdelta_library(), str(builds(0)), targets, str(tmp_path)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "remote 4 exact True" in proc.stdout, proc.stdout + proc.stderr  # two encodes, two decodes
    assert marks.read_text() == "ran\n"  # the main module ran once: in the task process only
