"""DeltaGliderReleaseSensor in poke, reschedule and deferrable modes; the triggers' contracts."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import pytest
from deltaglider_core import DeltaStore

from airflow_provider_deltaglider.sensors.release import DeltaGliderReleaseSensor
from airflow_provider_deltaglider.triggers.release import DeltaGliderReleaseEventTrigger, DeltaGliderReleaseTrigger
from tests.airflow_runs import run_dag

START = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)


@pytest.fixture
def conn(moto_conn: str) -> str:
    return moto_conn


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
            task_id="missing_bucket", location="s3://no-such-bucket-qq/rel/", deltaglider_conn_id=conn, timeout=600
        )
    result = run_dag(dag)
    # failed on our error, not a timeout
    assert result.error("missing_bucket").startswith("Bucket 'no-such-bucket-qq' does not exist")
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
    moto_s3: Any, conn: str, builds: Any, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The release is published only once the sensor's own first poke has found nothing (an event, not a
    timer), so the sensor must defer and the trigger must be what finds it."""
    import threading

    from airflow.sdk import DAG

    from airflow_provider_deltaglider.sensors import release as sensor_module

    store = DeltaStore(moto_s3.client)
    store.put(builds(0), moto_s3.bucket, "rel/app-0.9.zip")  # too old: the first poke finds nothing new
    path = builds(1)
    first_poke_empty = threading.Event()
    real_find = sensor_module.find_releases

    def observed(*args: Any, **kwargs: Any) -> Any:
        found = real_find(*args, **kwargs)
        if not found:
            first_poke_empty.set()
        return found

    monkeypatch.setattr(sensor_module, "find_releases", observed)

    def publish() -> None:
        if first_poke_empty.wait(120):
            store.put(path, moto_s3.bucket, "rel/app-2.0.0.zip")

    later = threading.Thread(target=publish)
    later.start()
    with DAG("sensor_deferred", schedule=None, start_date=START) as dag:
        DeltaGliderReleaseSensor(
            task_id="wait", location=f"s3://{moto_s3.bucket}/rel/", pattern="app-*.zip", after_version="1.0",
            deferrable=True, deltaglider_conn_id=conn, poke_interval=0.5, timeout=120,
        )  # fmt: skip
    try:
        result = run_dag(dag)
    finally:
        first_poke_empty.set()
        later.join()
    assert result.states == {"wait": "success"}
    out = capfd.readouterr().out
    assert "no new release matching 'app-*.zip'" in out  # the first poke found nothing, so it deferred
    assert result.xcoms["wait"]["newest"]["key"] == "rel/app-2.0.0.zip"
    assert result.xcoms["wait"]["newest"]["version"] == "2.0.0"


def test_execute_complete_fails_on_a_trigger_error() -> None:
    from airflow_provider_deltaglider.compat import AirflowException, AirflowFailException

    sensor = DeltaGliderReleaseSensor(task_id="s", location="s3://bkt/rel/", deferrable=True)
    error = {"status": "error", "message": "Bucket 'bkt' does not exist: create it first or fix the bucket name."}
    with pytest.raises(AirflowFailException, match=r"Waiting for a release in s3://bkt/rel/ failed: Bucket 'bkt'"):
        sensor.execute_complete({}, {**error, "retryable": False})  # no retries spent on a missing bucket
    with pytest.raises(AirflowException, match=r"Waiting for a release in s3://bkt/rel/ failed: Bucket 'bkt'") as err:
        sensor.execute_complete({}, {**error, "retryable": True})
    assert not isinstance(err.value, AirflowFailException)
    with pytest.raises(AirflowException, match="failed: no event"):
        sensor.execute_complete({}, None)
    done = {"status": "success", "payload": {"newest": {"key": "rel/a-1.zip"}, "releases": [], "count": 1}}
    assert sensor.execute_complete({}, done) == done["payload"]


def test_trigger_serializes_every_connection_parameter() -> None:
    trigger = DeltaGliderReleaseTrigger(
        location="s3://b/rel/", pattern="app-*.zip", regex=None, newer_than="2024-01-01T00:00:00+00:00",
        after_version="1.2", deltaglider_conn_id="c", region_name="eu-west-1", endpoint_url="http://127.0.0.1:9",
        client_config={"max_pool_connections": 4}, poke_interval=7.5, up_to="2024-02-01T00:00:00+00:00",
        verify="/etc/ssl/ca.pem",
    )  # fmt: skip
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_provider_deltaglider.triggers.release.DeltaGliderReleaseTrigger"
    assert kwargs == {
        "location": "s3://b/rel/",
        "pattern": "app-*.zip",
        "regex": None,
        "newer_than": "2024-01-01T00:00:00+00:00",
        "after_version": "1.2",
        "up_to": "2024-02-01T00:00:00+00:00",
        "deltaglider_conn_id": "c",
        "region_name": "eu-west-1",
        "endpoint_url": "http://127.0.0.1:9",
        "client_config": {"max_pool_connections": 4},
        "verify": "/etc/ssl/ca.pem",
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
    assert error.payload["retryable"] is False  # the sensor fails without spending retries


def test_event_trigger_yields_one_event_per_new_release(moto_s3: Any, conn: str, builds: Any) -> None:
    store = DeltaStore(moto_s3.client)
    store.put(builds(0), moto_s3.bucket, "rel/app-1.0.zip")  # baseline: existed before the watch started

    async def scenario() -> list[str]:
        trigger = DeltaGliderReleaseEventTrigger(
            location=f"s3://{moto_s3.bucket}/rel/", pattern="app-*.zip", deltaglider_conn_id=conn, poke_interval=0.1
        )
        baseline = _watch_checks(trigger)
        agen = trigger.run()
        seen = []
        first = asyncio.ensure_future(agen.__anext__())
        assert await asyncio.to_thread(baseline.wait, 30)  # the baseline listing is done
        await asyncio.to_thread(store.put, builds(1), moto_s3.bucket, "rel/app-1.1.zip")
        await asyncio.to_thread(store.put, builds(2), moto_s3.bucket, "rel/app-1.2.zip")
        seen.append((await asyncio.wait_for(first, 10)).payload["release"]["key"])
        seen.append((await asyncio.wait_for(agen.__anext__(), 10)).payload["release"]["key"])
        extra = asyncio.ensure_future(agen.__anext__())
        await baseline.two_more_quiet_polls(extra)  # nothing further: each release announced once
        extra.cancel()
        return seen

    assert sorted(asyncio.run(scenario())) == ["rel/app-1.1.zip", "rel/app-1.2.zip"]


class _Checks:
    """Counts a trigger's completed listings, so a test waits for the trigger's progress instead of a clock."""

    def __init__(self, trigger: Any) -> None:
        import threading

        self.count = 0
        self._cond = threading.Condition()
        real = trigger._check

        def check() -> Any:
            found = real()
            with self._cond:
                self.count += 1
                self._cond.notify_all()
            return found

        trigger._check = check

    def wait(self, timeout: float) -> bool:
        """True once the first (baseline) listing has returned."""
        return self.reached(1, timeout)

    def reached(self, count: int, timeout: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self.count >= count, timeout)

    async def two_more_quiet_polls(self, pending: Any) -> None:
        """Let the trigger list twice more: had it found anything, it would have yielded (``pending`` done)
        and stopped polling, so the wait would run out instead."""
        await asyncio.to_thread(self.reached, self.count + 2, 10)
        assert not pending.done()


def _watch_checks(trigger: Any) -> _Checks:
    return _Checks(trigger)


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
        watched = trigger()
        baseline = _watch_checks(watched)
        agen = watched.run()
        pending = asyncio.ensure_future(agen.__anext__())
        assert await asyncio.to_thread(baseline.wait, 30)  # baseline taken
        while DeltaGliderReleaseEventTrigger.STATE_KEY not in state.values:  # ... and stored
            await asyncio.sleep(0.01)
        await asyncio.to_thread(store.put, builds(1), moto_s3.bucket, "rel/app-1.1.zip")
        event = await asyncio.wait_for(pending, 10)
        await agen.aclose()
        return str(event.payload["release"]["key"])

    assert asyncio.run(first_life()) == "rel/app-1.1.zip"
    stored = state.values[DeltaGliderReleaseEventTrigger.STATE_KEY]
    assert sorted(stored["keys"]) == ["rel/app-1.0.zip", "rel/app-1.1.zip"] and stored["floor"] is None
    store.put(builds(2), moto_s3.bucket, "rel/app-1.2.zip")  # lands while the triggerer is down

    async def second_life() -> list[str]:
        watched = trigger()
        checks = _watch_checks(watched)
        agen = watched.run()
        got = [str((await asyncio.wait_for(agen.__anext__(), 10)).payload["release"]["key"])]
        extra = asyncio.ensure_future(agen.__anext__())
        await checks.two_more_quiet_polls(extra)  # 1.0 and 1.1 are not announced again
        extra.cancel()
        return got

    assert asyncio.run(second_life()) == ["rel/app-1.2.zip"]


def test_a_checks_connection_lookup_reaches_the_triggerers_own_loop() -> None:
    """A trigger's blocking check looks its connection up, which on Airflow 3.0 goes to the triggerer's
    supervisor through ``async_to_sync``. From the triggers' worker thread that call must run on the
    triggerer's loop (where its comms lock lives); on a loop of its own, Airflow 3.0.6's triggerer died with
    "Response read out of order" (found by the deployment suite on 3.0.6). An ``asyncio.to_thread`` thread
    would give it a new loop."""
    from asgiref.sync import async_to_sync

    from airflow_provider_deltaglider.triggers.release import _off_loop

    async def scenario() -> tuple[asyncio.AbstractEventLoop, list[asyncio.AbstractEventLoop]]:
        seen: list[asyncio.AbstractEventLoop] = []

        async def supervisor_request() -> None:
            seen.append(asyncio.get_running_loop())

        def check() -> list[Any]:
            async_to_sync(supervisor_request)()
            return []

        assert await _off_loop(check) == []
        return asyncio.get_running_loop(), seen

    loop, seen = asyncio.run(scenario())
    assert seen == [loop]
