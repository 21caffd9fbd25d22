"""What opens a resource closes it: stores, hooks, operators, and triggers that run for weeks in a triggerer."""

from __future__ import annotations

import asyncio
import os
import tempfile
import threading
from pathlib import Path
from typing import Any

import pytest
from deltaglider_core import DeltaStore, StoreConfig

from airflow_provider_deltaglider.hooks.deltaglider import DeltaGliderHook
from airflow_provider_deltaglider.triggers.release import DeltaGliderReleaseEventTrigger, DeltaGliderReleaseTrigger
from tests.airflow_runs import conn_env


def _ours() -> set[str]:
    """This process's private directories (their names carry the pid): another test process sharing the temp
    directory cannot make a store here look leaky."""
    mine = tuple(f"deltaglider-{kind}-{os.getpid()}-" for kind in ("work", "cache"))
    return {p for p in os.listdir(tempfile.gettempdir()) if p.startswith(mine)}


def _resources() -> tuple[int, int, int]:
    return len(os.listdir("/proc/self/fd")), threading.active_count(), len(_ours())


def test_store_close_releases_everything_it_opened(moto_s3: Any, builds: Any, tmp_path: Path) -> None:
    before = _ours()
    earlier = set(threading.enumerate())  # other tests' stores may still have side threads until collected
    with DeltaStore(moto_s3.client) as store:
        store.put(builds(0), moto_s3.bucket, "rel/app-1.0.0.zip")
        store.put(builds(1), moto_s3.bucket, "rel/app-1.0.1.zip")
        opened = _ours() - before
        assert len(opened) == 2  # its private work dir and its own filesystem cache
        mine = {t for t in set(threading.enumerate()) - earlier if t.name.startswith("deltaglider-side")}
        assert mine
    assert _ours() == before
    assert not mine & set(threading.enumerate())  # this store's side threads are gone
    store.close()  # idempotent
    shared = DeltaStore(moto_s3.client, StoreConfig(cache_backend="memory"))
    borrowed = DeltaStore(moto_s3.client, cache=shared.cache)
    borrowed.put(builds(2), moto_s3.bucket, "rel/app-1.0.2.zip")
    borrowed.close()
    assert shared.get(moto_s3.bucket, "rel/app-1.0.2.zip", tmp_path / "o.zip").sha256  # the lender's cache lives on
    shared.close()


def test_hook_close_and_reopen(moto_s3: Any, monkeypatch: pytest.MonkeyPatch, builds: Any) -> None:
    name, value = conn_env("dg_life", moto_s3)
    monkeypatch.setenv(name, value)
    before = _ours()
    with DeltaGliderHook("dg_life") as hook:
        first = hook.get_store()
        first.put(builds(0), moto_s3.bucket, "rel/app-1.0.0.zip")
    assert _ours() == before
    with DeltaGliderHook("dg_life") as hook:
        assert hook.get_store() is not first


def test_a_thousand_trigger_polls_leak_nothing(
    moto_s3: Any, monkeypatch: pytest.MonkeyPatch, builds: Any, tmp_path: Path
) -> None:
    """100 trigger lives of 10 polls each (nothing to find, poke_interval 0), as a triggerer runs them over time:
    open file descriptors, threads and temp dirs stay where they were after the first lives. (A private temp
    directory, so other processes' temp dirs cannot blur the count.)"""
    private = tmp_path / "tmp"
    private.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(private))
    name, value = conn_env("dg_poll", moto_s3)
    monkeypatch.setenv(name, value)
    DeltaStore(moto_s3.client).put(builds(0), moto_s3.bucket, "rel/app-1.0.zip")
    location = f"s3://{moto_s3.bucket}/rel/"

    async def life(index: int) -> int:
        cls = DeltaGliderReleaseTrigger if index % 2 else DeltaGliderReleaseEventTrigger
        trigger = cls(location=location, pattern="app-9*.zip", deltaglider_conn_id="dg_poll", poke_interval=0)
        polls = 0
        real = trigger._check

        def counted() -> Any:
            nonlocal polls
            polls += 1
            return real()

        trigger._check = counted  # type: ignore[method-assign]
        agen = trigger.run()
        pending = asyncio.ensure_future(agen.__anext__())
        while polls < 10:
            await asyncio.sleep(0)
        pending.cancel()
        await asyncio.gather(pending, return_exceptions=True)
        await agen.aclose()
        return polls

    async def lives(count: int) -> int:
        return sum([await life(i) for i in range(count)])

    warm = asyncio.run(lives(10))
    baseline = _resources()
    polls = warm + asyncio.run(lives(90))
    after = _resources()
    assert polls >= 1000
    assert after[0] <= baseline[0] + 2, f"file descriptors grew: {baseline} -> {after}"
    assert after[1] <= baseline[1] + 1, f"threads grew: {baseline} -> {after}"
    assert after[2] <= baseline[2], f"temp dirs grew: {baseline} -> {after}"
