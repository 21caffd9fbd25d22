"""Nightly builds: produce build artifacts, store them delta-compressed, verify them, report the savings.

Each run builds ``params.versions`` consecutive versions of a deterministic fake artifact (a zip whose
members change a little every version, like a real project's nightly output; no network needed), uploads
them with ``DeltaGliderUploadOperator`` (the first becomes the deltaspace's reference, later ones small
deltas), downloads them back to check they are byte-identical, and runs the stats operator.

Connection: ``deltaglider_default`` (type ``deltaglider``; see docs/connection.md).
Trigger it with ``airflow dags test nightly_builds -c '{"versions": 8}'`` to see deltas happen in one run.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG, Param, task

from airflow_provider_deltaglider.operators.download import DeltaGliderDownloadOperator
from airflow_provider_deltaglider.operators.stats import DeltaGliderStatsOperator
from airflow_provider_deltaglider.operators.upload import DeltaGliderUploadOperator

WORK = "{{ params.workdir }}/{{ dag.dag_id }}/{{ run_id | replace(':', '_') | replace('+', '_') }}"

with DAG(
    dag_id="nightly_builds",
    schedule="@daily",
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc),
    catchup=False,
    tags=["deltaglider", "example"],
    params={
        "bucket": Param("artifacts", type="string"),
        "prefix": Param("nightly/app/", type="string"),
        "versions": Param(1, type="integer", minimum=1),
        "first_version": Param(0, type="integer", minimum=0),
        "size": Param(1_700_000, type="integer", minimum=10_000),
        "workdir": Param("/tmp/deltaglider-example", type="string"),
    },
    doc_md=__doc__,
) as dag:

    @task
    def build(params: dict | None = None, run_id: str | None = None, **context: object) -> list[str]:
        """Write this run's build artifacts and return their paths."""
        import sys
        from pathlib import Path

        # example_dags/fake_builds.py, beside this file (Airflow 3.0 does not put the DAGs folder on sys.path)
        sys.path.insert(0, str(Path(__file__).parent))
        from fake_builds import make_build

        assert params is not None and run_id is not None
        out = f"{params['workdir']}/nightly_builds/{run_id.replace(':', '_').replace('+', '_')}/build"
        first = int(params["first_version"])
        return [
            str(make_build(out, v, size=int(params["size"]))) for v in range(first, first + int(params["versions"]))
        ]

    built = build()

    upload = DeltaGliderUploadOperator(
        task_id="upload",
        source=WORK + "/build/*.zip",
        dest="s3://{{ params.bucket }}/{{ params.prefix }}",
    )

    download = DeltaGliderDownloadOperator(
        task_id="download_back",
        source="s3://{{ params.bucket }}/{{ params.prefix }}",
        pattern="*.zip",
        dest=WORK + "/verify",
    )

    @task
    def verify(uploaded: dict, downloaded: dict) -> dict:
        """Every file uploaded this run came back with the same SHA-256."""
        by_key = {f["key"]: f for f in downloaded["files"]}
        bad = [f["key"] for f in uploaded["files"] if by_key.get(f["key"], {}).get("sha256") != f["sha256"]]
        if bad:
            raise ValueError(f"downloaded copies differ from the uploads: {bad}")
        return {"verified": len(uploaded["files"]), "saved_ratio": uploaded["saved_ratio"]}

    stats = DeltaGliderStatsOperator(
        task_id="stats",
        location="s3://{{ params.bucket }}/{{ params.prefix }}",
        report_path=WORK + "/report/storage",
    )

    checked = verify(upload.output, download.output)
    built >> upload >> download >> checked >> stats
