"""DeltaGliderPruneOperator: dry run by default; removes only what no delta names, in two phases."""

from __future__ import annotations

import datetime as dt
from typing import Any

from deltaglider_core import DeltaStore

from airflow_provider_deltaglider.operators.prune import DeltaGliderPruneOperator
from tests.airflow_runs import run_dag

START = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)


def _keys(env: Any) -> list[str]:
    return sorted(o["Key"] for o in env.client.list_objects_v2(Bucket=env.bucket).get("Contents", []))


def test_prune_operator_dry_run_then_for_real(moto_s3: Any, moto_conn: str, builds: Any) -> None:
    from airflow.sdk import DAG

    store = DeltaStore(moto_s3.client)
    store.put(builds(0), moto_s3.bucket, "keep/app-1.0.0.zip")
    store.put(builds(0, seed=3, name="old"), moto_s3.bucket, "old/old-1.0.0.zip")
    store.delete(moto_s3.bucket, "old/old-1.0.0.zip")  # old/reference.bin: named by nothing now
    before = _keys(moto_s3)
    with DAG("prune_op", schedule=None, start_date=START) as dag:
        dry = DeltaGliderPruneOperator(
            task_id="dry", location=moto_s3.bucket, grace_period=dt.timedelta(0), deltaglider_conn_id=moto_conn
        )
        real = DeltaGliderPruneOperator(
            task_id="real", location=f"s3://{moto_s3.bucket}/", grace_period=dt.timedelta(0), dry_run=False,
            deltaglider_conn_id=moto_conn,
        )  # fmt: skip
        dry >> real
    result = run_dag(dag)
    assert result.states == {"dry": "success", "real": "success"}
    assert result.xcoms["dry"]["dry_run"] and result.xcoms["dry"]["trashed"] == ["old/reference.bin"]
    assert result.xcoms["real"]["trashed"] == ["old/reference.bin"]
    assert before == ["keep/app-1.0.0.zip.delta", "keep/reference.bin", "old/reference.bin"]
    assert _keys(moto_s3) == [".deltaglider/trash/old/reference.bin", "keep/app-1.0.0.zip.delta", "keep/reference.bin"]
