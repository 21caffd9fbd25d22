"""Encodes and decodes on every core: concurrent calls go to worker processes, within the memory budget."""

from __future__ import annotations

import importlib.util
import multiprocessing
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from deltaglider_core import DeltaStore
from deltaglider_core.budget import MIB, encode_cost
from deltaglider_core.codec import XDelta3Codec
from deltaglider_core.codec_pool import ProcessRunner


def _library() -> str:
    spec = importlib.util.find_spec("pyxdelta")
    assert spec is not None and spec.origin
    return spec.origin


def test_concurrent_encodes_run_in_worker_processes_and_stay_exact(builds: Any, tmp_path: Path) -> None:
    runner = ProcessRunner(_library(), workers=2, budget=4096 * MIB)
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
        assert runner.remote_calls >= 1 and multiprocessing.active_children()
        for i, delta in enumerate(deltas):
            codec.decode(pairs[i][0], delta, tmp_path / f"out{i}")
            assert (tmp_path / f"out{i}").read_bytes() == pairs[i][1].read_bytes()
    finally:
        codec.close()
    assert multiprocessing.active_children() == []


def test_calls_wait_while_the_budget_is_spent() -> None:
    """Two calls that each cost the whole budget run one after the other, never together."""
    runner = ProcessRunner(_library(), workers=2, budget=encode_cost(16 * MIB))
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
    store = DeltaStore(moto_s3.client, max_workers=2)
    for i in range(2):
        store.put(builds(0, seed=i, name=f"app{i}"), moto_s3.bucket, f"s{i}/app{i}-1.0.0.zip")
    gate = threading.Barrier(2)

    def put(i: int) -> str:
        gate.wait()
        return store.put(builds(1, seed=i, name=f"app{i}"), moto_s3.bucket, f"s{i}/app{i}-1.0.1.zip").kind

    with ThreadPoolExecutor(2) as pool:
        assert list(pool.map(put, range(2))) == ["delta", "delta"]
    store.close()
    assert multiprocessing.active_children() == []
