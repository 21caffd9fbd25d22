"""DeltaGliderReleaseSensor in poke, reschedule and deferrable modes; the triggers' contracts."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import pytest
from deltaglider_core import DeltaStore

from airflow_provider_deltaglider.sensors.release import DeltaGliderReleaseSensor
from airflow_provider_deltaglider.triggers.release import DeltaGliderReleaseEventTrigger, DeltaGliderReleaseTrigger
from tests.airflow_runs import conn_env, run_dag

START = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)


@pytest.fixture
def conn(moto_s3: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    name, value = conn_env("dg_sensor", moto_s3)
    monkeypatch.setenv(name, value)
    return "dg_sensor"


def test_poke_reschedule_and_nothing_new(moto_s3: Any, conn: str, builds: Any) -> None:
    from airflow.sdk import DAG

    store = DeltaStore(moto_s3.client)
    for v in (0, 1, 2):
        store.put(builds(v), moto_s3.bucket, f"rel/app-1.{v}.0.zip")
    loc = f"s3://{moto_s3.bucket}/rel/"
    common = {"location": loc, "deltaglider_conn_id": conn, "poke_interval": 1}
    with DAG("sensor_modes", schedule=None, start_date=START) as dag:
        DeltaGliderReleaseSensor(task_id="poke", pattern="app-*.zip", after_version="1.0.0", **common)
        DeltaGliderReleaseSensor(task_id="reschedule", pattern="app-*.zip", mode="reschedule", **common)
        DeltaGliderReleaseSensor(
            task_id="nothing_new", pattern="app-*.zip", after_version="9.0", timeout=2, soft_fail=True, **common
        )
        DeltaGliderReleaseSensor(
            task_id="missing_bucket", location="s3://no-such-bucket-qq/rel/", deltaglider_conn_id=conn, timeout=30
        )
    result = run_dag(dag)
    assert result.states == {
        "poke": "success",
        "reschedule": "success",
        "nothing_new": "skipped",
        "missing_bucket": "failed",
    }
    poke = result.xcoms["poke"]
    assert [r["version"] for r in poke["releases"]] == ["1.1.0", "1.2.0"]
    assert poke["newest"]["key"] == "rel/app-1.2.0.zip" and poke["newest"]["sha256"]
    assert result.xcoms["reschedule"]["count"] == 3


def test_deferrable_sensor_resumes_from_trigger(
    moto_s3: Any, conn: str, builds: Any, capfd: pytest.CaptureFixture[str]
) -> None:
    import threading

    from airflow.sdk import DAG

    store = DeltaStore(moto_s3.client)
    store.put(builds(0), moto_s3.bucket, "rel/app-0.9.zip")  # too old: the first poke finds nothing new
    path = builds(1)
    later = threading.Timer(10.0, store.put, args=(path, moto_s3.bucket, "rel/app-2.0.0.zip"))
    later.start()
    with DAG("sensor_deferred", schedule=None, start_date=START) as dag:
        DeltaGliderReleaseSensor(
            task_id="wait", location=f"s3://{moto_s3.bucket}/rel/", pattern="app-*.zip", after_version="1.0",
            deferrable=True, deltaglider_conn_id=conn, poke_interval=0.5,
        )  # fmt: skip
    result = run_dag(dag)
    later.join()
    assert result.states == {"wait": "success"}
    out = capfd.readouterr().out
    assert "no new release matching 'app-*.zip'" in out  # the first poke found nothing, so it deferred
    assert result.xcoms["wait"]["newest"]["key"] == "rel/app-2.0.0.zip"
    assert result.xcoms["wait"]["newest"]["version"] == "2.0.0"


def test_trigger_serializes_every_connection_parameter() -> None:
    trigger = DeltaGliderReleaseTrigger(
        location="s3://b/rel/", pattern="app-*.zip", regex=None, newer_than="2024-01-01T00:00:00+00:00",
        after_version="1.2", deltaglider_conn_id="c", region_name="eu-west-1", endpoint_url="http://127.0.0.1:9",
        client_config={"max_pool_connections": 4}, poke_interval=7.5,
    )  # fmt: skip
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_provider_deltaglider.triggers.release.DeltaGliderReleaseTrigger"
    assert kwargs == {
        "location": "s3://b/rel/",
        "pattern": "app-*.zip",
        "regex": None,
        "newer_than": "2024-01-01T00:00:00+00:00",
        "after_version": "1.2",
        "deltaglider_conn_id": "c",
        "region_name": "eu-west-1",
        "endpoint_url": "http://127.0.0.1:9",
        "client_config": {"max_pool_connections": 4},
        "poke_interval": 7.5,
    }
    assert DeltaGliderReleaseTrigger(**kwargs).serialize() == (classpath, kwargs)
    event_cls, event_kwargs = DeltaGliderReleaseEventTrigger(**kwargs).serialize()
    assert event_cls.endswith("DeltaGliderReleaseEventTrigger") and event_kwargs == kwargs


async def _first_event(trigger: Any, timeout: float = 20) -> Any:
    agen = trigger.run()
    try:
        return await asyncio.wait_for(agen.__anext__(), timeout)
    finally:
        await agen.aclose()


def test_trigger_waits_then_fires_and_reports_errors(moto_s3: Any, conn: str, builds: Any) -> None:
    store = DeltaStore(moto_s3.client)
    path = builds(0)

    async def scenario() -> tuple[Any, float]:
        trigger = DeltaGliderReleaseTrigger(
            location=f"s3://{moto_s3.bucket}/rel/", pattern="app-*.zip", deltaglider_conn_id=conn, poke_interval=0.2
        )
        waiting = asyncio.create_task(_first_event(trigger))
        ticks = 0
        while not waiting.done() and ticks < 5:  # the event loop stays free while the trigger polls
            await asyncio.sleep(0.1)
            ticks += 1
        assert not waiting.done()
        await asyncio.to_thread(store.put, path, moto_s3.bucket, "rel/app-3.0.zip")
        return await waiting, ticks

    event, ticks = asyncio.run(scenario())
    assert ticks == 5
    assert event.payload["status"] == "success"
    assert event.payload["payload"]["newest"]["key"] == "rel/app-3.0.zip"
    broken = DeltaGliderReleaseTrigger(location="s3://no-such-bucket-zz/rel/", deltaglider_conn_id=conn)
    error = asyncio.run(_first_event(broken))
    assert error.payload["status"] == "error" and "no-such-bucket-zz" in error.payload["message"]


def test_event_trigger_yields_one_event_per_new_release(moto_s3: Any, conn: str, builds: Any) -> None:
    store = DeltaStore(moto_s3.client)
    store.put(builds(0), moto_s3.bucket, "rel/app-1.0.zip")  # baseline: existed before the watch started

    async def scenario() -> list[str]:
        trigger = DeltaGliderReleaseEventTrigger(
            location=f"s3://{moto_s3.bucket}/rel/", pattern="app-*.zip", deltaglider_conn_id=conn, poke_interval=0.1
        )
        agen = trigger.run()
        seen = []
        first = asyncio.ensure_future(agen.__anext__())
        await asyncio.sleep(2.0)  # the trigger takes its baseline (hook, store, first listing) meanwhile
        await asyncio.to_thread(store.put, builds(1), moto_s3.bucket, "rel/app-1.1.zip")
        await asyncio.to_thread(store.put, builds(2), moto_s3.bucket, "rel/app-1.2.zip")
        seen.append((await asyncio.wait_for(first, 10)).payload["release"]["key"])
        seen.append((await asyncio.wait_for(agen.__anext__(), 10)).payload["release"]["key"])
        extra = asyncio.ensure_future(agen.__anext__())
        await asyncio.sleep(0.5)
        assert not extra.done()  # nothing further: each release announced once
        extra.cancel()
        return seen

    assert sorted(asyncio.run(scenario())) == ["rel/app-1.1.zip", "rel/app-1.2.zip"]


class MemoryState:
    """Stands in for the triggerer's asset_state_store (same async get/set contract)."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    async def aget(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    async def aset(self, key: str, value: Any) -> None:
        self.values[key] = value


def test_event_trigger_state_survives_a_triggerer_restart(moto_s3: Any, conn: str, builds: Any) -> None:
    store = DeltaStore(moto_s3.client)
    store.put(builds(0), moto_s3.bucket, "rel/app-1.0.zip")
    state = MemoryState()

    def trigger() -> DeltaGliderReleaseEventTrigger:
        t = DeltaGliderReleaseEventTrigger(
            location=f"s3://{moto_s3.bucket}/rel/", pattern="app-*.zip", deltaglider_conn_id=conn, poke_interval=0.1
        )
        t.asset_state_store = state  # type: ignore[assignment]
        return t

    async def first_life() -> str:
        agen = trigger().run()
        pending = asyncio.ensure_future(agen.__anext__())
        await asyncio.sleep(2.0)  # baseline taken and stored
        await asyncio.to_thread(store.put, builds(1), moto_s3.bucket, "rel/app-1.1.zip")
        event = await asyncio.wait_for(pending, 10)
        await agen.aclose()
        return str(event.payload["release"]["key"])

    assert asyncio.run(first_life()) == "rel/app-1.1.zip"
    stored = state.values[DeltaGliderReleaseEventTrigger.STATE_KEY]
    assert sorted(stored["keys"]) == ["rel/app-1.0.zip", "rel/app-1.1.zip"] and stored["floor"] is None
    store.put(builds(2), moto_s3.bucket, "rel/app-1.2.zip")  # lands while the triggerer is down

    async def second_life() -> list[str]:
        agen = trigger().run()
        got = [str((await asyncio.wait_for(agen.__anext__(), 10)).payload["release"]["key"])]
        extra = asyncio.ensure_future(agen.__anext__())
        await asyncio.sleep(0.5)
        assert not extra.done()  # 1.0 and 1.1 are not announced again
        extra.cancel()
        return got

    assert asyncio.run(second_life()) == ["rel/app-1.2.zip"]
