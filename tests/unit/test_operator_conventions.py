"""What an Airflow user expects of a provider's operators (the Amazon provider's S3 operators as the model):
templated connection parameters, verify/botocore_config, no retries spent on errors a retry cannot fix,
downloaded files with the usual mode, sensor XCom with bucket and URI, a Test button that names the bucket."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import Any

import pytest
from deltaglider_core import DeltaStore

from airflow_provider_deltaglider.hooks.deltaglider import DeltaGliderHook
from airflow_provider_deltaglider.operators.download import DeltaGliderDownloadOperator
from airflow_provider_deltaglider.operators.migrate import DeltaGliderMigrateOperator
from airflow_provider_deltaglider.operators.upload import DeltaGliderUploadOperator
from airflow_provider_deltaglider.sensors.release import DeltaGliderReleaseSensor
from tests.airflow_runs import run_dag

START = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
RETRY = {"retries": 2, "retry_delay": dt.timedelta(seconds=0)}


@pytest.fixture
def conn(moto_conn: str) -> str:
    return moto_conn


def test_connection_parameters_and_max_ratio_are_templated(moto_s3: Any, conn: str, builds: Any) -> None:
    from airflow.sdk import DAG

    for op in (DeltaGliderUploadOperator, DeltaGliderDownloadOperator, DeltaGliderMigrateOperator):
        assert {"deltaglider_conn_id", "region_name", "endpoint_url"} <= set(op.template_fields)
    assert "max_ratio" in DeltaGliderUploadOperator.template_fields
    assert {"region_name", "endpoint_url"} <= set(DeltaGliderReleaseSensor.template_fields)
    params = {"ratio": "0.0001", "region": "us-east-1", "conn": conn}
    with DAG("conv_templated", schedule=None, start_date=START, params=params) as dag:
        first = DeltaGliderUploadOperator(
            task_id="first", source=str(builds(0)), dest=f"s3://{moto_s3.bucket}/rel/",
            deltaglider_conn_id="{{ params.conn }}", region_name="{{ params.region }}",
        )  # fmt: skip
        strict = DeltaGliderUploadOperator(
            task_id="strict", source=str(builds(1)), dest=f"s3://{moto_s3.bucket}/rel/",
            deltaglider_conn_id="{{ params.conn }}", max_ratio="{{ params.ratio }}",
        )  # fmt: skip
        first >> strict
    result = run_dag(dag)
    assert result.states == {"first": "success", "strict": "success"}
    assert [f["kind"] for f in result.xcoms["strict"]["files"]] == ["direct"]  # the rendered 0.0001 applied


def test_verify_and_botocore_config_are_accepted(conn: str) -> None:
    op = DeltaGliderUploadOperator(
        task_id="t", source="x", dest="s3://b/p/", deltaglider_conn_id=conn,
        botocore_config={"max_pool_connections": 3, "connect_timeout": 7}, client_config={"connect_timeout": 9},
        verify=False,
    )  # fmt: skip
    client = op.hook.get_client()
    assert (client.meta.config.max_pool_connections, client.meta.config.connect_timeout) == (3, 9)
    assert op.hook.verify is False


def test_errors_a_retry_cannot_fix_do_not_spend_retries(moto_s3: Any, conn: str, builds: Any) -> None:
    from airflow.sdk import DAG

    moto_s3.client.put_object(Bucket=moto_s3.bucket, Key="src/odd/x.zip.delta", Body=b"not a delta")
    with DAG("conv_retries", schedule=None, start_date=START) as dag:
        DeltaGliderUploadOperator(
            task_id="missing_bucket", source=str(builds(0)), dest="s3://no-such-bucket-rr/rel/",
            deltaglider_conn_id=conn, **RETRY,
        )  # fmt: skip
        DeltaGliderUploadOperator(
            task_id="bad_url", source=str(builds(0)), dest="no-scheme/rel/", deltaglider_conn_id=conn, **RETRY
        )
        DeltaGliderDownloadOperator(
            task_id="missing_key", source=f"s3://{moto_s3.bucket}/rel/none.zip", dest="/tmp/none.zip",
            deltaglider_conn_id=conn, **RETRY,
        )  # fmt: skip
        DeltaGliderMigrateOperator(  # a per-object failure: worth retrying (it may be transient)
            task_id="object_failure", source=f"s3://{moto_s3.bucket}/src/", dest=f"s3://{moto_s3.bucket}/dst/",
            deltaglider_conn_id=conn, **RETRY,
        )  # fmt: skip
    result = run_dag(dag)
    assert set(result.states.values()) == {"failed"}
    assert result.tries["missing_bucket"] == result.tries["bad_url"] == result.tries["missing_key"] == 1
    assert result.tries["object_failure"] == 3  # 1 + 2 retries
    assert result.error("missing_bucket").startswith("Bucket 'no-such-bucket-rr' does not exist")
    assert result.error("missing_key").startswith(f"s3://{moto_s3.bucket}/rel/none.zip does not exist")


def test_downloaded_files_get_the_umask_mode(moto_s3: Any, builds: Any, tmp_path: Path) -> None:
    store = DeltaStore(moto_s3.client)
    store.put(builds(0), moto_s3.bucket, "rel/app-1.0.0.zip")
    store.put(builds(1), moto_s3.bucket, "rel/app-1.0.1.zip")
    old = os.umask(0o027)
    try:
        for key in ("rel/app-1.0.0.zip", "rel/app-1.0.1.zip"):
            got = store.get(moto_s3.bucket, key, tmp_path)
            assert Path(got.path).stat().st_mode & 0o777 == 0o640
    finally:
        os.umask(old)
    assert store.get(moto_s3.bucket, "rel/app-1.0.0.zip", tmp_path / "again.zip") and (
        (tmp_path / "again.zip").stat().st_mode & 0o777 == 0o666 & ~old
    )


def test_sensor_xcom_names_bucket_and_uri(moto_s3: Any, conn: str, builds: Any) -> None:
    from airflow.sdk import DAG

    DeltaStore(moto_s3.client).put(builds(0), moto_s3.bucket, "rel/app-1.2.0.zip")
    with DAG("conv_sensor", schedule=None, start_date=START) as dag:
        DeltaGliderReleaseSensor(
            task_id="wait", location=f"s3://{moto_s3.bucket}/rel/", pattern="app-*.zip", deltaglider_conn_id=conn
        )
    newest = run_dag(dag).xcoms["wait"]["newest"]
    assert newest["bucket"] == moto_s3.bucket
    assert newest["uri"] == f"s3://{moto_s3.bucket}/rel/app-1.2.0.zip"


def test_test_connection_names_a_missing_bucket(moto_s3: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    payload = {"conn_type": "deltaglider", "login": "testing", "password": "testing",
               "extra": {"region_name": "us-east-1", "bucket": "no-such-bucket-tc"}}  # fmt: skip
    monkeypatch.setenv("AIRFLOW_CONN_DG_TC", json.dumps(payload))
    ok, message = DeltaGliderHook("dg_tc").test_connection()
    assert not ok
    assert message == "Bucket 'no-such-bucket-tc' does not exist: create it or fix the connection's bucket extra."
