"""The example DAGs on a real Airflow 3 deployment (tests/deployment.py): api-server, scheduler, dag-processor,
triggerer and a LocalExecutor with 4 slots, against SeaweedFS on loopback.

What users run and `airflow dags test` cannot show: asset events scheduling another DAG, a deferrable sensor
parked on the triggerer process, an AssetWatcher surviving a triggerer restart, migration shards running at
the same time in separate worker processes, a shard's process SIGKILLed and retried, and two runs uploading
into one prefix at once. Every claim is checked on what ends up in S3 (read back byte for byte) and on the
task instances the scheduler recorded.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from deltaglider_core import DeltaStore, Endpoint
from deltaglider_core.ops.stats import compute_stats

from example_dags.fake_builds import make_build
from tests.airflow_runs import conn_env
from tests.deploy.conftest import _FAILED
from tests.deployment import Deployment, TaskRow

pytestmark = pytest.mark.deploy
ROOT = Path(__file__).resolve().parents[2]
DAG_IDS = ("nightly_builds", "storage_report", "scheduled_migration", "release_pipeline", "release_pipeline_on_event")
POLL_S = 3  # the example DAGs' sensor and watcher poll interval here (DELTAGLIDER_EXAMPLE_POLL_SECONDS)
ARTIFACTS, LEGACY = "artifacts", "legacy-artifacts"  # the buckets the example DAGs name by default
SIZE = 300_000


def _airflow_at_least(major: int, minor: int) -> bool:
    from airflow import __version__

    return tuple(int(part) for part in __version__.split(".")[:2]) >= (major, minor)


def _supervisor_retries_killed_tasks() -> bool:
    """Whether this Airflow's task supervisor sends a task killed from outside (SIGKILL) up for retry. Airflow
    3.0's marks it failed even with retries left (its log: ``exit_code=SIGKILL final_state=failed`` for a task
    whose start said ``should_retry=True``); later ones retry it (``ActivitySubprocess._should_retry``)."""
    from airflow.sdk.execution_time import supervisor

    return "_should_retry" in {a.name for a in supervisor.ActivitySubprocess.__attrs_attrs__}


@dataclass
class World:
    deployment: Deployment
    client: Any
    store: DeltaStore
    work: Path


@pytest.fixture(scope="module")
def world(seaweed: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    client = seaweed.client()
    for bucket in (ARTIFACTS, LEGACY):
        existing = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
        if bucket not in existing:
            client.create_bucket(Bucket=bucket)
    base = tmp_path_factory.mktemp("deployment")
    conn_name, conn_value = conn_env("deltaglider_default", seaweed)
    env = {
        conn_name: conn_value,
        "DELTAGLIDER_EXAMPLE_POLL_SECONDS": str(POLL_S),
        "AIRFLOW__CORE__DEFAULT_TASK_RETRY_DELAY": "2",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    deployment = Deployment(base / "airflow", ROOT / "example_dags", env=env, parallelism=4)
    store = DeltaStore(Endpoint(client, credentials=seaweed.credentials()))
    with deployment:
        deployment.wait_parsed(*DAG_IDS)
        yield World(deployment, client, store, base / "work")
    store.close()


@pytest.fixture(autouse=True)
def _logs_on_failure(request: pytest.FixtureRequest, world: World) -> Iterator[None]:
    yield
    if request.node.stash.get(_FAILED, False):
        print(world.deployment.log_tails(80))  # shown with the failure; full logs under the deployment's home


# ---------------------------------------------------------------------------------------------- helpers
def _finished(deployment: Deployment, dag_id: str, count: int) -> list[tuple[str, str, str]] | None:
    runs = deployment.runs(dag_id)
    done = [r for r in runs if r[2] in ("success", "failed")]
    return runs if len(runs) >= count and len(done) == len(runs) else None


def _overlapping(rows: list[TaskRow]) -> int:
    """The largest number of these task instances that were running at one moment."""
    edges = sorted([(r.start, 1) for r in rows if r.start] + [(r.end, -1) for r in rows if r.end])
    best = now = 0
    for _, step in edges:
        now += step
        best = max(best, now)
    return best


def _xcom(deployment: Deployment, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> Any:
    rows = deployment.query(
        "SELECT value FROM xcom WHERE dag_id = ? AND run_id = ? AND task_id = ? AND map_index = ? "
        "AND key = 'return_value'",
        dag_id, run_id, task_id, map_index,
    )  # fmt: skip
    assert rows, f"no return value of {dag_id}/{run_id}/{task_id}[{map_index}]"
    value = rows[0][0]
    return json.loads(value) if isinstance(value, (str, bytes)) else value


def _read(store: DeltaStore, bucket: str, key: str, tmp: Path) -> bytes:
    got = store.get(bucket, key, tmp / key.replace("/", "_"))
    return Path(got.path).read_bytes()


def _fill_source(client: Any, prefix: str, spaces: int, versions: int, size: int, tmp: Path) -> dict[str, bytes]:
    """Plain S3 objects to migrate: ``spaces`` folders of ``versions`` archives, plus a log file each."""
    source: dict[str, bytes] = {}
    for space in range(spaces):
        for v in range(versions):
            body = make_build(tmp / f"src-{space}", v, size=size, seed=space + 1).read_bytes()
            source[f"{prefix}proj-{space:02d}/app-1.0.{v}.zip"] = body
        source[f"{prefix}proj-{space:02d}/build.log"] = f"build log of project {space}\n".encode() * 50
    for key, body in source.items():
        client.put_object(Bucket=LEGACY, Key=key, Body=body)
    return source


def _assert_migrated(world: World, source: dict[str, bytes], src_prefix: str, dest_prefix: str, tmp: Path) -> None:
    """Every source object reads back byte-identical from the destination; one form per key; no orphans."""
    root = src_prefix.rstrip("/").rpartition("/")[2]  # preserve_prefix=True keeps the source's last folder
    tmp.mkdir(parents=True, exist_ok=True)
    for key, body in source.items():
        dest_key = f"{dest_prefix}{root}/{key[len(src_prefix) :]}"
        assert _read(world.store, ARTIFACTS, dest_key, tmp) == body, dest_key
    raw = [o["Key"] for p in world.client.get_paginator("list_objects_v2").paginate(Bucket=ARTIFACTS,
           Prefix=dest_prefix) for o in p.get("Contents", [])]  # fmt: skip
    logical = [k[: -len(".delta")] if k.endswith(".delta") else k for k in raw if not k.endswith("reference.bin")]
    assert len(logical) == len(set(logical)) == len(source), "a key stored twice (whole and delta) or missing"
    stats = compute_stats(world.store, ARTIFACTS, dest_prefix, detailed=True)
    assert stats.orphaned_references == (), stats.orphaned_references


# ---------------------------------------------------------------------------------------------- the tests
def test_each_nightly_upload_run_schedules_the_storage_report_once(world: World) -> None:
    """The upload's asset event (through the uploads alias, for the rendered destination) starts one
    storage_report run per nightly run; the scheduled nightly run (catchup=False) counts too."""
    d = world.deployment
    d.unpause("storage_report", "nightly_builds")  # the scheduled nightly run uploads version 0 (the defaults)
    first = d.wait_for("the scheduled nightly run finished", lambda: _finished(d, "nightly_builds", 1), 300)
    assert [(t, s) for _, t, s in first] == [("scheduled", "success")]
    d.wait_for("the first storage report", lambda: _finished(d, "storage_report", 1), 240)
    manual = d.trigger("nightly_builds", "manual-v1", {"first_version": 1, "versions": 2, "size": SIZE,
                                                       "workdir": str(world.work)})  # fmt: skip
    assert d.wait_run("nightly_builds", manual) == "success"
    reports = d.wait_for("the second storage report", lambda: _finished(d, "storage_report", 2), 240)
    time.sleep(6)  # nothing more may follow
    reports = d.runs("storage_report")
    assert [(t, s) for _, t, s in reports] == [("asset_triggered", "success")] * 2
    consumed = d.query(
        "SELECT r.run_id, COUNT(*) FROM dagrun_asset_event e JOIN dag_run r ON r.id = e.dag_run_id "
        "WHERE r.dag_id = 'storage_report' GROUP BY r.run_id"
    )
    assert sorted(n for _, n in consumed) == [1, 1]  # one upload event each
    tmp = world.work / "check-nightly"
    for v in (1, 2):
        expected = make_build(tmp / "expected", v, size=SIZE).read_bytes()
        assert _read(world.store, ARTIFACTS, f"nightly/app/app-1.0.{v}.zip", tmp) == expected
    assert world.store.head(ARTIFACTS, "nightly/app/app-1.0.2.zip").kind == "delta"


def test_a_deferred_sensor_holds_no_slot_while_shards_run_in_parallel(world: World) -> None:
    """release_pipeline's sensor waits on the triggerer (state deferred, no worker process) while the weekly
    migration's 4 mapped shards run at the same time in separate worker processes; the triggerer resumes
    the sensor when the release lands."""
    d = world.deployment
    now = dt.datetime.now(dt.timezone.utc)
    conf = {"prefix": "deferral/app/", "newer_than": now.isoformat(),
            "up_to": (now + dt.timedelta(hours=1)).isoformat(), "workdir": str(world.work / "releases")}  # fmt: skip
    run = d.trigger("release_pipeline", "manual-deferral", conf)
    d.unpause("release_pipeline")
    sensor = d.wait_for(
        "the sensor deferred",
        lambda: (t := d.tasks("release_pipeline", run).get("wait_for_release")) and t.state == "deferred" and t,
        180,
    )
    on_triggerer = (
        "SELECT t.triggerer_id FROM task_instance ti JOIN trigger t ON t.id = ti.trigger_id WHERE "
        "ti.dag_id = 'release_pipeline' AND ti.run_id = ? AND ti.task_id = 'wait_for_release' AND t.triggerer_id"
    )
    d.wait_for("a triggerer process runs the sensor's trigger", lambda: d.query(on_triggerer, run), 60)

    source = _fill_source(world.client, "releases/", spaces=12, versions=3, size=SIZE, tmp=world.work / "src")
    d.unpause("scheduled_migration")  # the scheduled run: s3://legacy-artifacts/releases/ -> artifacts/migrated/
    runs = d.wait_for("the scheduled migration finished", lambda: _finished(d, "scheduled_migration", 1), 420)
    (migration_run, run_type, state) = runs[0]
    assert (run_type, state) == ("scheduled", "success")
    shards = [t for t in d.tasks("scheduled_migration", migration_run).values() if t.task_id == "migrate"]
    assert len(shards) == 4 and all(t.state == "success" for t in shards)
    assert _overlapping(shards) >= 2, [(t.name, t.start, t.end) for t in shards]
    assert len({t.pid for t in shards}) == 4  # separate worker processes
    reports = [_xcom(d, "scheduled_migration", migration_run, "migrate", t.map_index) for t in shards]
    assert sum(r["migrated"] for r in reports) == len(source)  # each object written by exactly one shard
    assert sum(r["skipped"] for r in reports) == 0 and sum(r["failed"] for r in reports) == 0
    _assert_migrated(world, source, "releases/", "migrated/", world.work / "check-migrated")

    still = d.tasks("release_pipeline", run)["wait_for_release"]
    assert still.state == "deferred", still  # it waited through the whole migration without a slot
    release = make_build(world.work / "release", 7, size=SIZE)
    world.store.put(release, ARTIFACTS, "deferral/app/app-1.0.7.zip")
    assert d.wait_run("release_pipeline", run, timeout=180) == "success"
    tasks = d.tasks("release_pipeline", run)
    assert tasks["wait_for_release"].state == "success" and tasks["check_release[0]"].state == "success"
    assert tasks["wait_for_release"].try_number == sensor.try_number  # resumed, not retried
    found = _xcom(d, "release_pipeline", run, "wait_for_release")
    assert found["newest"]["key"] == "deferral/app/app-1.0.7.zip"
    assert (
        _xcom(d, "release_pipeline", run, "check_release", 0)["sha256"]
        == world.store.head(ARTIFACTS, "deferral/app/app-1.0.7.zip").sha256
    )


@pytest.mark.skipif(
    not _supervisor_retries_killed_tasks(),
    reason="this Airflow (3.0) marks a task killed from outside failed even with retries left: nothing to retry",
)
def test_a_shard_killed_mid_transfer_is_retried_to_a_complete_destination(world: World) -> None:
    d = world.deployment
    source = _fill_source(world.client, "big/", spaces=8, versions=4, size=1_500_000, tmp=world.work / "big")
    conf = {"source": f"s3://{LEGACY}/big/", "dest": f"s3://{ARTIFACTS}/after-kill/"}
    run = d.trigger("scheduled_migration", "manual-kill", conf)

    def victim() -> TaskRow | None:
        shard = d.tasks("scheduled_migration", run).get("migrate[0]")
        if shard is None or shard.state != "running" or not shard.pid:
            return None
        written = world.client.list_objects_v2(Bucket=ARTIFACTS, Prefix="after-kill/").get("KeyCount", 0)
        return shard if written else None  # mid-transfer: something is written, the shard still runs

    shard = d.wait_for("shard 0 transferring", victim, 300, every=0.2)
    os.kill(shard.pid, signal.SIGKILL)  # type: ignore[arg-type]
    assert d.wait_run("scheduled_migration", run, timeout=420) == "success"
    retried = d.tasks("scheduled_migration", run)["migrate[0]"]
    assert retried.state == "success" and retried.try_number >= 2, retried
    _assert_migrated(world, source, "big/", "after-kill/", world.work / "check-kill")


@pytest.mark.skipif(
    not _airflow_at_least(3, 3),
    reason="the asset state store the watcher keeps its announced releases in arrived in Airflow 3.3; before it a "
    "restarted watcher takes a new baseline (docs/sensors.md)",
)
def test_the_asset_watcher_announces_each_release_once_across_a_triggerer_restart(world: World) -> None:
    d = world.deployment
    d.unpause("release_pipeline_on_event")
    watching = "SELECT 1 FROM trigger WHERE classpath LIKE '%ReleaseEventTrigger' AND triggerer_id IS NOT NULL"
    d.wait_for("the release watcher running on the triggerer", lambda: d.query(watching), 120)
    # Its first poll takes the releases already there as the baseline and stores it in the asset's state
    # store: only a release that lands after that is new (one landing earlier is part of the baseline).
    baseline = "SELECT value FROM asset_state_store WHERE key = 'deltaglider_announced_releases'"
    d.wait_for("the release watcher's baseline stored", lambda: d.query(baseline), 120)
    before = len(d.runs("release_pipeline_on_event"))
    tmp = world.work / "watch"

    def announced(count: int) -> list[str]:
        runs = d.wait_for(f"{count} release run(s)", lambda: _finished(d, "release_pipeline_on_event", count), 180)
        return [run_id for run_id, _, _ in runs[before:]]

    world.store.put(make_build(tmp, 10, size=SIZE), ARTIFACTS, "nightly/app/app-1.0.10.zip")
    first = announced(before + 1)
    d.stop_component("triggerer")
    world.store.put(make_build(tmp, 11, size=SIZE), ARTIFACTS, "nightly/app/app-1.0.11.zip")  # lands while down
    d.start_component("triggerer")
    d.wait_healthy()
    second = announced(before + 2)
    time.sleep(4 * POLL_S)  # a repeat of 1.0.10 (or 1.0.11) would show up by now
    runs = d.runs("release_pipeline_on_event")[before:]
    assert len(runs) == 2 and all(state == "success" for _, _, state in runs), runs
    keys = [_xcom(d, "release_pipeline_on_event", run_id, "announce") for run_id in second]
    assert [item["key"] for found in keys for item in found] == [
        "nightly/app/app-1.0.10.zip",
        "nightly/app/app-1.0.11.zip",
    ]
    assert first == second[:1]


def test_two_runs_uploading_into_one_fresh_prefix_at_once_lose_nothing(world: World) -> None:
    d = world.deployment
    size = 1_000_000
    common = {"prefix": "concurrent/app/", "versions": 3, "size": size, "workdir": str(world.work / "concurrent")}
    d.cli("dags", "pause", "nightly_builds")  # both runs wait queued, then start in one scheduler loop
    runs = [
        d.trigger("nightly_builds", "concurrent-a", {**common, "first_version": 0}),
        d.trigger("nightly_builds", "concurrent-b", {**common, "first_version": 10}),
    ]
    d.unpause("nightly_builds")
    assert [d.wait_run("nightly_builds", r, timeout=300) for r in runs] == ["success", "success"]
    uploads = [d.tasks("nightly_builds", r)["upload"] for r in runs]
    assert _overlapping(uploads) == 2, [(u.name, u.start, u.end) for u in uploads]  # really at the same time
    assert uploads[0].pid != uploads[1].pid
    tmp = world.work / "check-concurrent"
    for v in (0, 1, 2, 10, 11, 12):
        expected = make_build(tmp / "expected", v, size=size).read_bytes()
        assert _read(world.store, ARTIFACTS, f"concurrent/app/app-1.0.{v}.zip", tmp) == expected
