"""Release pipeline: act once on every new release of an artifact.

``release_pipeline_on_event`` (the way to start): an ``AssetWatcher`` with ``DeltaGliderReleaseEventTrigger``
schedules the DAG once per new release (Airflow 3 event-driven scheduling); no task waits at all, and the
triggerer keeps what it announced, so a restart neither repeats nor misses a release.

``release_pipeline`` (for schedules that must poll): each hourly run looks for releases that landed in its
own hour, up to the time it was due to run (``run_after``; ``newer_than`` / ``up_to`` to choose), so every
release falls in exactly one run however runs overlap; a run whose hour saw no release is skipped. The sensor is
deferrable (the wait, if any, is in the triggerer, not a worker slot) and returns the newest release and
all new ones in version order; the checks fan out over them with dynamic task mapping.

The releases are their own asset (``release_asset``: ``s3://artifacts/nightly/app/app-*.zip``), not the
deltaspace's asset that upload tasks emit events on, so one release starts one run. Both waits poll every
60 s (sensor) and 120 s (watcher); ``DELTAGLIDER_EXAMPLE_POLL_SECONDS`` in the environment of the DAG
processor and triggerer sets both (the deployment tests poll every few seconds).

Connection: ``deltaglider_default``.
"""

from __future__ import annotations

import datetime as dt
import os

from airflow.sdk import DAG, AssetWatcher, Param, task

from airflow_provider_deltaglider.assets import release_asset
from airflow_provider_deltaglider.operators.download import DeltaGliderDownloadOperator
from airflow_provider_deltaglider.sensors.release import DeltaGliderReleaseSensor
from airflow_provider_deltaglider.triggers.release import DeltaGliderReleaseEventTrigger

NEWEST = "{{ ti.xcom_pull(task_ids='wait_for_release')['newest']['key'] }}"
POLL_SECONDS = int(os.environ.get("DELTAGLIDER_EXAMPLE_POLL_SECONDS") or 0)


@task
def new_releases(found: dict) -> list[dict]:
    return list(found["releases"])


@task
def check_release(release: dict, params: dict | None = None) -> dict:
    """Reconstruct one release from S3, verify its SHA-256 and that the archive opens."""
    import tempfile
    import zipfile

    from airflow_provider_deltaglider.hooks.deltaglider import DeltaGliderHook

    assert params is not None
    store = DeltaGliderHook().get_store()
    with tempfile.TemporaryDirectory() as tmp:
        got = store.get(params["bucket"], release["key"], tmp)
        with zipfile.ZipFile(got.path) as archive:
            broken = archive.testzip()
    if broken is not None:
        raise ValueError(f"{release['key']}: member {broken} is corrupt")
    return {"key": release["key"], "version": release["version"], "sha256": got.sha256, "ok": True}


with DAG(
    dag_id="release_pipeline",
    schedule="@hourly",
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc),
    catchup=False,
    tags=["deltaglider", "example"],
    params={
        "bucket": Param("artifacts", type="string"),
        "prefix": Param("nightly/app/", type="string"),
        "pattern": Param("app-*.zip", type="string"),
        "newer_than": Param(None, type=["null", "string"]),  # ISO date-time; default: an hour before the run
        "up_to": Param(None, type=["null", "string"]),  # ISO date-time; default: the run's logical date
        "workdir": Param("/tmp/deltaglider-example/releases", type="string"),
    },
    doc_md=__doc__,
) as dag:
    wait = DeltaGliderReleaseSensor(
        task_id="wait_for_release",
        location="s3://{{ params.bucket }}/{{ params.prefix }}",
        pattern="{{ params.pattern }}",
        # run_after, not logical_date: a run triggered by hand (or by an asset) has no logical date on Airflow 3
        newer_than="{{ params.newer_than or (dag_run.run_after - macros.timedelta(hours=1)).isoformat() }}",
        up_to="{{ params.up_to or dag_run.run_after.isoformat() }}",
        deferrable=True,
        poke_interval=POLL_SECONDS or 60,
        timeout=600,  # the interval is over when the run starts: a short wait covers a late listing
        soft_fail=True,  # no release in this interval: skipped, not failed
    )
    fetch = DeltaGliderDownloadOperator(
        task_id="download_newest",
        source="s3://{{ params.bucket }}/" + NEWEST,
        dest="{{ params.workdir }}/{{ run_id | replace(':', '_') | replace('+', '_') }}/",
    )
    checks = check_release.expand(release=new_releases(wait.output))
    wait >> fetch >> checks


release_feed = release_asset(
    "s3://artifacts/nightly/app/",
    "app-*.zip",
    watchers=[
        AssetWatcher(
            name="new_app_release",
            trigger=DeltaGliderReleaseEventTrigger(
                location="s3://artifacts/nightly/app/", pattern="app-*.zip", poke_interval=POLL_SECONDS or 120
            ),
        )
    ],
)

with DAG(
    dag_id="release_pipeline_on_event",
    schedule=[release_feed],
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc),
    catchup=False,
    tags=["deltaglider", "example"],
    doc_md=__doc__,
) as event_dag:

    @task
    def announce(**context: object) -> list[dict]:
        """Log each release that triggered this run: the watcher's event carries it as ``payload.release``."""
        events = context["triggering_asset_events"]  # type: ignore[index]
        extras = [dict(e.extra) for evs in events.values() for e in evs]  # type: ignore[attr-defined]
        found = [x.get("payload", {}).get("release", x) for x in extras]
        for item in found:
            print("new release:", item)
        return found

    announce()
