"""Provider pieces against the real SeaweedFS server: trigger polling, upload/download, no leaked secrets."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_deltaglider.triggers.release import DeltaGliderReleaseTrigger
from tests.airflow_runs import conn_env, run_dag

pytestmark = pytest.mark.integration
START = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)


def test_trigger_fires_on_seaweedfs(seaweed_s3: Any, builds: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    name, value = conn_env("dg_trig", seaweed_s3)
    monkeypatch.setenv(name, value)
    store = seaweed_s3.store()

    async def scenario() -> Any:
        trigger = DeltaGliderReleaseTrigger(
            location=f"s3://{seaweed_s3.bucket}/rel/", pattern="app-*.zip", after_version="1.0",
            deltaglider_conn_id="dg_trig", poke_interval=0.2,
        )  # fmt: skip
        agen = trigger.run()
        pending = asyncio.ensure_future(agen.__anext__())
        await asyncio.sleep(0.5)
        assert not pending.done()
        await asyncio.to_thread(store.put, builds(0), seaweed_s3.bucket, "rel/app-1.0.zip")
        await asyncio.sleep(0.5)
        assert not pending.done()  # 1.0 is not after 1.0
        await asyncio.to_thread(store.put, builds(1), seaweed_s3.bucket, "rel/app-1.1.zip")
        return await asyncio.wait_for(pending, 20)

    event = asyncio.run(scenario())
    assert event.payload["status"] == "success"
    assert event.payload["payload"]["newest"]["version"] == "1.1"


def test_upload_download_through_airflow(seaweed_s3: Any, builds: Any, tmp_path: Path, monkeypatch: Any) -> None:
    from airflow.sdk import DAG

    from airflow_provider_deltaglider.operators.download import DeltaGliderDownloadOperator
    from airflow_provider_deltaglider.operators.sync import DeltaGliderSyncOperator
    from airflow_provider_deltaglider.operators.upload import DeltaGliderUploadOperator
    from tests.airflow_runs import asset_events

    name, value = conn_env("dg_up", seaweed_s3)
    monkeypatch.setenv(name, value)
    files = [builds(v) for v in range(4)]
    b = seaweed_s3.bucket
    with DAG("seaweed_up_down", schedule=None, start_date=START) as dag:
        up = DeltaGliderUploadOperator(
            task_id="upload", source=[str(f) for f in files], dest=f"s3://{b}/nightly/", deltaglider_conn_id="dg_up"
        )
        down = DeltaGliderDownloadOperator(
            task_id="download", source=f"s3://{b}/nightly/", dest=str(tmp_path / "out"), deltaglider_conn_id="dg_up"
        )
        mirror = DeltaGliderSyncOperator(
            task_id="sync_down", source=f"s3://{b}/nightly/", dest=str(tmp_path / "mirror"), deltaglider_conn_id="dg_up"
        )
        resync = DeltaGliderSyncOperator(
            task_id="sync_again",
            source=f"s3://{b}/nightly/",
            dest=str(tmp_path / "mirror"),
            deltaglider_conn_id="dg_up",
        )
        up >> down >> mirror >> resync
    result = run_dag(dag)
    assert result.states == {
        "upload": "success",
        "download": "success",
        "sync_down": "success",
        "sync_again": "success",
    }
    assert result.xcoms["sync_down"]["transferred_count"] == 4
    assert (result.xcoms["sync_again"]["transferred_count"], result.xcoms["sync_again"]["unchanged"]) == (0, 4)
    for f in files:
        assert (tmp_path / "mirror" / f.name).read_bytes() == f.read_bytes()
    events = asset_events(f"s3://{b}/nightly")  # the canonical name: no trailing slash
    assert events[-1] == {"count": 4, "original_bytes": sum(f.stat().st_size for f in files),
                          "stored_bytes": result.xcoms["upload"]["stored_bytes"]}  # fmt: skip
    for f in files:
        assert (
            hashlib.sha256((tmp_path / "out" / f.name).read_bytes()).digest() == hashlib.sha256(f.read_bytes()).digest()
        )
    up_x = result.xcoms["upload"]
    raw = seaweed_s3.client.list_objects_v2(Bucket=b, Prefix="nightly/")["Contents"]
    assert up_x["stored_bytes"] == sum(o["Size"] for o in raw)


def test_secret_never_appears_in_logs_or_xcom(
    seaweed_s3: Any, builds: Any, monkeypatch: Any, capfd: pytest.CaptureFixture[str], caplog: Any
) -> None:
    from airflow.sdk import DAG

    from airflow_provider_deltaglider.operators.upload import DeltaGliderUploadOperator

    secret = "Sup3r-Secret-Value-9f8e7d"
    token = "Session-Token-Value-1a2b3c"
    payload = {
        "conn_type": "deltaglider",
        "login": seaweed_s3.access_key,
        "password": secret,
        "extra": {"endpoint_url": seaweed_s3.endpoint_url, "aws_session_token": token, "retries": 1},
    }
    monkeypatch.setenv("AIRFLOW_CONN_DG_LEAK", json.dumps(payload))
    with DAG("no_leaks", schedule=None, start_date=START) as dag:
        DeltaGliderUploadOperator(
            task_id="upload", source=str(builds(0)), dest=f"s3://{seaweed_s3.bucket}/x/", deltaglider_conn_id="dg_leak"
        )
    result = run_dag(dag)
    captured = capfd.readouterr()
    text = captured.out + captured.err + caplog.text + json.dumps(result.xcoms)
    assert result.states == {"upload": "failed"}
    failure = result.error("upload")
    assert failure.startswith(f"Access denied while trying to check bucket s3://{seaweed_s3.bucket} (403): check")
    assert secret not in failure and token not in failure
    assert secret not in text and token not in text
