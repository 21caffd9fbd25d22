"""S3 -> local: keys that cannot become local files are skipped and reported; the rest arrive; the task fails
at the end with the list; nothing is written twice or somewhere else."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from deltaglider_core import DeltaStore
from deltaglider_core.ops.sync import sync_down

from airflow_provider_deltaglider.operators.download import DeltaGliderDownloadOperator
from airflow_provider_deltaglider.operators.sync import DeltaGliderSyncOperator
from tests.airflow_runs import conn_env, run_dag

START = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
LONG = "x" * 300 + ".txt"


def _populate(env: Any) -> None:
    for key, body in [
        ("p/ok.txt", b"fine"),
        ("p/a", b"a file named a"),
        ("p/a/b", b"a file below a folder named a"),
        (f"p/{LONG}", b"too long a name"),
        ("p/nul\x00.txt", b"nul"),
        ("p/dir-in-the-way.txt", b"blocked"),
    ]:
        env.client.put_object(Bucket=env.bucket, Key=key, Body=body)


def test_sync_down_skips_and_reports_then_stays_quiet(moto_s3: Any, tmp_path: Path) -> None:
    _populate(moto_s3)
    dest = tmp_path / "mirror"
    (dest / "dir-in-the-way.txt").mkdir(parents=True)
    store = DeltaStore(moto_s3.client)
    report = sync_down(store, moto_s3.bucket, "p/", dest)
    assert sorted(report.transferred) == ["p/a/b", "p/ok.txt"]
    b = moto_s3.bucket
    assert len(report.refused) == 4
    joined = "\n".join(report.refused)
    assert f"Refusing s3://{b}/p/a: it is also the folder of other keys" in joined
    assert f"Refusing s3://{b}/p/{LONG}: the name" in joined and "over the local file system's limit of 255" in joined
    assert "contains a NUL character" in joined
    assert f"Refusing s3://{b}/p/dir-in-the-way.txt: a local directory {dest.resolve()}/dir-in-the-way.txt" in joined
    assert (dest / "ok.txt").read_bytes() == b"fine" and (
        dest / "a" / "b"
    ).read_bytes() == b"a file below a folder named a"
    assert sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file()) == ["a/b", "ok.txt"]
    again = sync_down(store, moto_s3.bucket, "p/", dest)
    assert again.transferred == () and again.unchanged == 2  # nothing re-sent, nothing written elsewhere


@pytest.mark.parametrize("operator", ["download", "sync"])
def test_operators_finish_the_rest_and_fail_with_the_list(
    moto_s3: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, operator: str
) -> None:
    from airflow.sdk import DAG

    _populate(moto_s3)
    name, value = conn_env("dg_local", moto_s3)
    monkeypatch.setenv(name, value)
    dest = tmp_path / "out"
    with DAG(f"local_{operator}", schedule=None, start_date=START) as dag:
        cls = DeltaGliderDownloadOperator if operator == "download" else DeltaGliderSyncOperator
        cls(task_id="t", source=f"s3://{moto_s3.bucket}/p/", dest=str(dest), deltaglider_conn_id="dg_local")
    result = run_dag(dag)
    assert result.states == {"t": "failed"}
    prefix = (
        "Downloaded 3 file(s) but could not write 3 key(s): " if operator == "download" else "Sync could not write 3"
    )
    assert result.error("t").startswith(prefix)
    assert f"s3://{moto_s3.bucket}/p/a:" in result.error("t") and "NUL" in result.error("t")
    assert (dest / "ok.txt").read_bytes() == b"fine" and (dest / "a" / "b").is_file()
    assert not (dest / "a" / "a").exists()
