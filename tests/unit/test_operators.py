"""Operators run through dag.test() on moto: outcomes in S3, byte-identical files, clear failures."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path
from typing import Any

import pytest
from deltaglider_core import DeltaStore

from airflow_provider_deltaglider.operators.download import DeltaGliderDownloadOperator
from airflow_provider_deltaglider.operators.stats import DeltaGliderStatsOperator
from airflow_provider_deltaglider.operators.sync import DeltaGliderSyncOperator
from airflow_provider_deltaglider.operators.upload import DeltaGliderUploadOperator
from tests.airflow_runs import conn_env, run_dag

START = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _keys(env: Any, prefix: str = "") -> list[str]:
    pages = env.client.get_paginator("list_objects_v2").paginate(Bucket=env.bucket, Prefix=prefix)
    return sorted(o["Key"] for p in pages for o in p.get("Contents", []))


@pytest.fixture
def dg_conn(moto_s3: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    name, value = conn_env("dg_unit", moto_s3, ec2_region_check="warn")
    monkeypatch.setenv(name, value)
    return "dg_unit"


def test_upload_download_and_bad_inputs(
    moto_s3: Any,
    dg_conn: str,
    builds: Any,
    tmp_path: Path,
) -> None:
    from airflow.sdk import DAG

    src = tmp_path / "src"
    versions = [builds(v) for v in range(3)]
    for v in versions:
        (src / v.name).parent.mkdir(exist_ok=True)
        (src / v.name).write_bytes(v.read_bytes())
    broken = tmp_path / "broken.zip"
    broken.symlink_to(tmp_path / "gone.zip")
    # a corrupt delta in a second prefix, written through the engine then damaged
    store = DeltaStore(moto_s3.client)
    store.put(versions[0], moto_s3.bucket, "bad/app-1.0.0.zip")
    store.put(versions[1], moto_s3.bucket, "bad/app-1.0.1.zip")
    obj = moto_s3.client.get_object(Bucket=moto_s3.bucket, Key="bad/app-1.0.1.zip.delta")
    body = bytearray(obj["Body"].read())
    body[len(body) // 2] ^= 0xFF
    moto_s3.client.put_object(
        Bucket=moto_s3.bucket, Key="bad/app-1.0.1.zip.delta", Body=bytes(body), Metadata=obj["Metadata"]
    )
    out = {name: tmp_path / name for name in ("all", "one", "corrupt")}
    b = moto_s3.bucket
    common = {"deltaglider_conn_id": dg_conn}
    with DAG("ops_upload_download", schedule=None, start_date=START) as dag:
        up = DeltaGliderUploadOperator(task_id="upload", source=f"{src}/*.zip", dest=f"s3://{b}/rel/", **common)
        empty = DeltaGliderUploadOperator(task_id="empty_glob", source=f"{src}/*.tgz", dest=f"s3://{b}/x/", **common)
        DeltaGliderUploadOperator(
            task_id="empty_allowed", source=f"{src}/*.tgz", dest=f"s3://{b}/x/", allow_empty=True, **common
        )
        DeltaGliderUploadOperator(task_id="bad_url", source=str(versions[0]), dest=f"{b}/rel/", **common)
        DeltaGliderUploadOperator(
            task_id="no_bucket", source=str(versions[0]), dest="s3://no-such-bucket-zz/rel/", **common
        )
        DeltaGliderUploadOperator(task_id="broken_file", source=str(broken), dest=f"s3://{b}/rel/", **common)
        down = DeltaGliderDownloadOperator(
            task_id="download_all", source=f"s3://{b}/rel/", pattern="*.zip", dest=str(out["all"]), **common
        )
        one = DeltaGliderDownloadOperator(
            task_id="download_one", source=f"s3://{b}/rel/{versions[1].name}", dest=str(out["one"]), **common
        )
        DeltaGliderDownloadOperator(
            task_id="download_corrupt", source=f"s3://{b}/bad/", dest=str(out["corrupt"]), **common
        )
        up >> [down, one]
        empty  # noqa: B018 - independent task
    result = run_dag(dag)
    assert result.states == {
        "upload": "success",
        "empty_glob": "failed",
        "empty_allowed": "success",
        "bad_url": "failed",
        "no_bucket": "failed",
        "broken_file": "failed",
        "download_all": "success",
        "download_one": "success",
        "download_corrupt": "failed",
    }
    assert f"No files match ['{src}/*.tgz']" in result.error("empty_glob")
    assert "Invalid S3 URL" in result.error("bad_url") and f"'{b}/rel/'" in result.error("bad_url")
    assert "Bucket 'no-such-bucket-zz' does not exist" in result.error("no_bucket")
    assert f"Local file '{broken}' does not exist or is not a regular file" in result.error("broken_file")
    assert f"s3://{b}/bad/app-1.0.1.zip.delta cannot be decoded" in result.error("download_corrupt")
    up_x = result.xcoms["upload"]
    assert [f["kind"] for f in up_x["files"]] == ["reference", "delta", "delta"]
    assert up_x["count"] == 3 and up_x["original_bytes"] == sum(v.stat().st_size for v in versions)
    assert up_x["stored_bytes"] == sum(f["stored_size"] for f in up_x["files"])
    assert _keys(moto_s3, "rel/") == sorted([f"rel/{v.name}.delta" for v in versions] + ["rel/reference.bin"])
    assert result.xcoms["empty_allowed"]["count"] == 0
    for v in versions:
        assert _sha(out["all"] / v.name) == _sha(v)
    assert result.xcoms["download_all"]["count"] == 3
    assert out["one"].read_bytes() == versions[1].read_bytes()
    # the corrupt delta left nothing behind; the good file before it did download
    assert sorted(p.name for p in out["corrupt"].iterdir()) == ["app-1.0.0.zip"]


def test_download_refuses_keys_that_escape(moto_s3: Any, dg_conn: str, tmp_path: Path) -> None:
    from airflow.sdk import DAG

    for key, body in [("evil/ok.txt", b"fine"), ("evil/../../escape.txt", b"x"), ("evil/a\\b.txt", b"y")]:
        moto_s3.client.put_object(Bucket=moto_s3.bucket, Key=key, Body=body)
    dest = tmp_path / "d" / "inner"
    with DAG("ops_unsafe", schedule=None, start_date=START) as dag:
        DeltaGliderDownloadOperator(
            task_id="download", source=f"s3://{moto_s3.bucket}/evil/", dest=str(dest), deltaglider_conn_id=dg_conn
        )
        DeltaGliderSyncOperator(
            task_id="sync_down",
            source=f"s3://{moto_s3.bucket}/evil/",
            dest=str(tmp_path / "s"),
            deltaglider_conn_id=dg_conn,
        )
    result = run_dag(dag)
    assert result.states == {"download": "failed", "sync_down": "failed"}
    b = moto_s3.bucket
    download, sync = result.error("download"), result.error("sync_down")
    assert download.startswith("Downloaded 1 file(s) but could not write 2 key(s): ")
    assert sync.startswith("Sync could not write 2 key(s): ")
    for message in (download, sync):
        assert f"Refusing s3://{b}/evil/../../escape.txt: the key has '.' or '..' segments" in message
        assert f"Refusing s3://{b}/evil/a\\b.txt: the key contains a backslash" in message
    assert (dest / "ok.txt").read_bytes() == b"fine"
    assert (tmp_path / "s" / "ok.txt").read_bytes() == b"fine"
    written = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert written == ["d/inner/ok.txt", "s/ok.txt"]


def test_sync_both_ways_with_delete_filters_and_dry_run(
    moto_s3: Any, dg_conn: str, builds: Any, tmp_path: Path
) -> None:
    from airflow.sdk import DAG

    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "a.zip").write_bytes(builds(0).read_bytes())
    (src / "sub" / "b.txt").write_text("bee")
    (src / "skip.log").write_text("log")
    outside = tmp_path / "outside.txt"
    outside.write_text("secret")
    (src / "link.txt").symlink_to(outside)
    moto_s3.client.put_object(Bucket=moto_s3.bucket, Key="mirror/stale.txt", Body=b"old")
    b = moto_s3.bucket
    with DAG("ops_sync", schedule=None, start_date=START) as dag:
        dry = DeltaGliderSyncOperator(
            task_id="dry", source=str(src), dest=f"s3://{b}/mirror/", exclude=["*.log"], delete=True, dry_run=True,
            deltaglider_conn_id=dg_conn,
        )  # fmt: skip
        up = DeltaGliderSyncOperator(
            task_id="up", source=str(src), dest=f"s3://{b}/mirror/", exclude=["*.log"], delete=True,
            deltaglider_conn_id=dg_conn,
        )  # fmt: skip
        again = DeltaGliderSyncOperator(
            task_id="again", source=str(src), dest=f"s3://{b}/mirror/", exclude=["*.log"], deltaglider_conn_id=dg_conn
        )
        down = DeltaGliderSyncOperator(
            task_id="down", source=f"s3://{b}/mirror/", dest=str(tmp_path / "copy"), deltaglider_conn_id=dg_conn
        )
        dry >> up >> again >> down
    result = run_dag(dag)
    assert result.states == {"dry": "success", "up": "success", "again": "success", "down": "success"}
    assert result.xcoms["dry"]["transferred"] == ["mirror/a.zip", "mirror/sub/b.txt"]
    assert result.xcoms["dry"]["deleted"] == ["mirror/stale.txt"] and result.xcoms["dry"]["dry_run"]
    assert result.xcoms["up"]["transferred_count"] == 2 and result.xcoms["up"]["deleted"] == ["mirror/stale.txt"]
    assert result.xcoms["again"]["transferred_count"] == 0 and result.xcoms["again"]["unchanged"] == 2
    assert [o.key for o in DeltaStore(moto_s3.client).list(b, "mirror/")] == ["mirror/a.zip", "mirror/sub/b.txt"]
    assert (tmp_path / "copy" / "a.zip").read_bytes() == (src / "a.zip").read_bytes()
    assert (tmp_path / "copy" / "sub" / "b.txt").read_text() == "bee"
    assert result.xcoms["down"]["transferred_count"] == 2


def test_stats_exact_figures_and_reports(moto_s3: Any, dg_conn: str, builds: Any, tmp_path: Path) -> None:
    from airflow.sdk import DAG

    store = DeltaStore(moto_s3.client)
    results = [store.put(builds(v), moto_s3.bucket, f"rel/app-1.0.{v}.zip") for v in range(3)]
    (tmp_path / "n.txt").write_text("n" * 100)
    store.put(tmp_path / "n.txt", moto_s3.bucket, "docs/n.txt")
    moto_s3.client.put_object(Bucket=moto_s3.bucket, Key="docs/raw.bin", Body=b"r" * 50)
    moto_s3.client.put_object(Bucket=moto_s3.bucket, Key="old/reference.bin", Body=b"o" * 70)
    report = tmp_path / "reports" / "storage"
    with DAG("ops_stats", schedule=None, start_date=START) as dag:
        DeltaGliderStatsOperator(
            task_id="detailed", location=f"s3://{moto_s3.bucket}/", report_path=str(report), kinds=True,
            deltaglider_conn_id=dg_conn,
        )  # fmt: skip
        DeltaGliderStatsOperator(task_id="default", location=f"s3://{moto_s3.bucket}/", deltaglider_conn_id=dg_conn)
        DeltaGliderStatsOperator(task_id="quick", location=moto_s3.bucket, detailed=False, deltaglider_conn_id=dg_conn)
    result = run_dag(dag)
    assert result.states == {"detailed": "success", "default": "success", "quick": "success"}
    d, q, default = result.xcoms["detailed"], result.xcoms["quick"], result.xcoms["default"]
    original = sum(r.original_size for r in results) + 100 + 50
    stored = sum(r.stored_size for r in results) + 100 + 50 + 70
    assert (d["objects"], d["deltas"], d["as_is"], d["direct"], d["regular"], d["references"]) == (5, 3, 2, 1, 1, 2)
    assert (default["as_is"], default["direct"], default["regular"]) == (2, None, None)
    assert (default["original_bytes"], default["orphaned_references"]) == (original, d["orphaned_references"])
    assert (d["original_bytes"], d["stored_bytes"], d["saved_bytes"]) == (original, stored, original - stored)
    assert d["orphaned_references"] == [{"key": "old/reference.bin", "size": 70}]
    assert {s["prefix"] for s in d["deltaspaces"]} == {"rel", "docs", "old"}
    assert (q["objects"], q["stored_bytes"], q["original_bytes"], q["saved_ratio"], q["direct"]) == (
        5, stored, None, None, None,
    )  # fmt: skip
    assert Path(d["reports"]["json"]).exists()
    page = Path(d["reports"]["html"]).read_text()
    assert "<svg" in page and "rel" in page and "DeltaGlider storage report" in page


def test_upload_max_ratio_and_download_with_nothing_matching(
    moto_s3: Any, dg_conn: str, builds: Any, tmp_path: Path
) -> None:
    from airflow.sdk import DAG

    v0, v1, v2 = builds(0), builds(1), builds(2)
    b = moto_s3.bucket
    common = {"deltaglider_conn_id": dg_conn}
    with DAG("ops_max_ratio", schedule=None, start_date=START) as dag:
        first = DeltaGliderUploadOperator(task_id="first", source=str(v0), dest=f"s3://{b}/rel/", **common)
        strict = DeltaGliderUploadOperator(
            task_id="strict", source=str(v1), dest=f"s3://{b}/rel/", max_ratio=0.0001, **common
        )
        loose = DeltaGliderUploadOperator(task_id="loose", source=str(v2), dest=f"s3://{b}/rel/", **common)
        nothing = DeltaGliderDownloadOperator(
            task_id="nothing", source=f"s3://{b}/rel/", pattern="*.tgz", dest=str(tmp_path / "d"), **common
        )
        first >> strict >> loose >> nothing
    result = run_dag(dag)
    assert result.states == {"first": "success", "strict": "success", "loose": "success", "nothing": "failed"}
    assert [f["kind"] for f in result.xcoms["strict"]["files"]] == ["direct"]
    assert [f["kind"] for f in result.xcoms["loose"]["files"]] == ["delta"]
    stored = [f"rel/{v0.name}.delta", f"rel/{v1.name}", f"rel/{v2.name}.delta", "rel/reference.bin"]
    assert _keys(moto_s3, "rel/") == stored
    assert result.error("nothing").startswith(f"Nothing under s3://{b}/rel/ matches '*.tgz'.")
