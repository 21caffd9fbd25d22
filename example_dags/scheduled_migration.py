"""Scheduled migration: copy a plain S3 prefix into delta storage, fanned out over workers.

``DeltaGliderMigrateOperator.partial(...).expand(shard=...)`` runs one mapped task per shard; each shard
migrates only the objects whose destination deltaspace hashes to it, so shards never overlap, never leave
a gap, and archives of one deltaspace share a reference. Re-runs skip what is already there. The
source is never modified. Connection: ``deltaglider_default``.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG, Param

from airflow_provider_deltaglider.operators.migrate import DeltaGliderMigrateOperator
from airflow_provider_deltaglider.operators.stats import DeltaGliderStatsOperator

SHARDS = 4

with DAG(
    dag_id="scheduled_migration",
    schedule="@weekly",
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc),
    catchup=False,
    max_active_tasks=SHARDS,
    tags=["deltaglider", "example"],
    params={
        "source": Param("s3://legacy-artifacts/releases/", type="string"),
        "dest": Param("s3://artifacts/migrated/", type="string"),
    },
    doc_md=__doc__,
) as dag:
    migrate = DeltaGliderMigrateOperator.partial(
        task_id="migrate",
        source="{{ params.source }}",
        dest="{{ params.dest }}",
        preserve_prefix=True,
        exclude=["*.tmp"],
        max_workers=8,
        retries=2,
    ).expand(shard=DeltaGliderMigrateOperator.shards(SHARDS))

    stats = DeltaGliderStatsOperator(task_id="stats", location="{{ params.dest }}")
    migrate >> stats
