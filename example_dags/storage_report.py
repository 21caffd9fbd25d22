"""Storage report: exact savings of a bucket after every nightly upload, as a logged table plus JSON and HTML files.

Scheduled on the nightly deltaspace's asset: each ``nightly_builds`` run's upload emits an event on it
(``s3://artifacts/nightly/app``), and each event starts one report. The HTML page is self-contained (inline
SVG bar chart of original vs stored bytes per deltaspace), so a later task can publish it anywhere.
Connection: ``deltaglider_default``.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG, Param

from airflow_provider_deltaglider.assets import deltaspace_asset
from airflow_provider_deltaglider.operators.stats import DeltaGliderStatsOperator

with DAG(
    dag_id="storage_report",
    schedule=[deltaspace_asset("s3://artifacts/nightly/app/")],
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc),
    catchup=False,
    tags=["deltaglider", "example"],
    params={
        "location": Param("s3://artifacts/", type="string"),
        "report_dir": Param("/tmp/deltaglider-example/reports", type="string"),
    },
    doc_md=__doc__,
) as dag:
    DeltaGliderStatsOperator(
        task_id="stats",
        location="{{ params.location }}",
        detailed=True,
        report_path="{{ params.report_dir }}/storage-{{ dag_run.run_after.strftime('%Y%m%dT%H%M%S') }}",
    )
