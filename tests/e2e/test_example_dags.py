"""Every example DAG through `airflow dags test` (real Airflow 3, SQLite) against SeaweedFS, asserting on
what ends up in S3 and on disk, not only on task states."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from deltaglider_core import DeltaStore

from example_dags.fake_builds import make_build

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
DAGS = ROOT / "example_dags"


@pytest.fixture(scope="module")
def airflow_env(seaweed: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    home = tmp_path_factory.mktemp("airflow-e2e")
    conn = {
        "conn_type": "deltaglider",
        "login": seaweed.access_key,
        "password": seaweed.secret_key,
        "extra": {"endpoint_url": seaweed.endpoint_url, "region_name": "us-east-1"},
    }
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
        "AIRFLOW_CONN_DELTAGLIDER_DEFAULT": json.dumps(conn),
    }
    _airflow(env, "db", "migrate")
    yield env


def _airflow(env: dict[str, str], *args: str) -> str:
    cmd = [str(Path(sys.executable).parent / "airflow"), *args]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False, timeout=600)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"airflow {' '.join(args)} failed:\n{output[-4000:]}"
    return output


def _dag_test(env: dict[str, str], dag_id: str, conf: dict[str, Any]) -> str:
    out = _airflow(env, "dags", "test", dag_id, "-c", json.dumps(conf))
    assert f"dag_id={dag_id}" in out and "state=success" in out
    return out


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _bucket(seaweed: Any, name: str) -> Any:
    client = seaweed.client()
    client.create_bucket(Bucket=name)
    return client


def _raw(client: Any, bucket: str, prefix: str = "") -> dict[str, int]:
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return {o["Key"]: o["Size"] for p in pages for o in p.get("Contents", [])}


def test_dags_import_cleanly_and_fast(airflow_env: dict[str, str]) -> None:
    _airflow(airflow_env, "dags", "reserialize")
    out = _airflow(airflow_env, "dags", "list-import-errors")
    assert "No data found" in out
    listed = _airflow(airflow_env, "dags", "list", "-o", "json")
    rows = next(line for line in listed.splitlines() if line.startswith("[{"))
    ids = {d["dag_id"] for d in json.loads(rows)}
    assert {"nightly_builds", "storage_report", "scheduled_migration", "release_pipeline",
            "release_pipeline_on_event"} <= ids  # fmt: skip
    code = (
        "import runpy, sys, time, airflow.sdk, airflow_provider_deltaglider.operators.upload\n"
        f"sys.path.insert(0, {str(DAGS)!r})\n"
        "t = time.perf_counter()\n"
        f"for name in {sorted(p.name for p in DAGS.glob('*.py'))!r}:\n"
        f"    runpy.run_path({str(DAGS)!r} + '/' + name)\n"
        "print(time.perf_counter() - t)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], env=airflow_env, capture_output=True, text=True, check=True)
    assert float(proc.stdout.strip().splitlines()[-1]) < 2.0  # all five files, Airflow already imported


def test_nightly_builds_then_storage_report(airflow_env: dict[str, str], seaweed: Any, tmp_path: Path) -> None:
    bucket = "e2e-nightly"
    client = _bucket(seaweed, bucket)
    conf = {"bucket": bucket, "versions": 5, "size": 300_000, "workdir": str(tmp_path / "work")}
    _dag_test(airflow_env, "nightly_builds", conf)
    raw = _raw(client, bucket, "nightly/app/")
    names = [f"app-1.0.{v}.zip" for v in range(5)]
    assert sorted(raw) == sorted([f"nightly/app/{n}.delta" for n in names] + ["nightly/app/reference.bin"])
    expected = [make_build(tmp_path / "expected", v, size=300_000) for v in range(5)]
    store = DeltaStore(client)
    for path in expected:
        got = store.get(bucket, f"nightly/app/{path.name}", tmp_path / "check.zip")
        assert got.sha256 == _sha(path)
    report_dir = tmp_path / "reports"
    _dag_test(airflow_env, "storage_report", {"location": f"s3://{bucket}/", "report_dir": str(report_dir)})
    report = json.loads(next(report_dir.glob("storage-*.json")).read_text())
    assert report["objects"] == 5 and report["deltas"] == 5 and report["references"] == 1
    assert report["stored_bytes"] == sum(raw.values())
    assert report["original_bytes"] == sum(p.stat().st_size for p in expected)
    assert report["saved_ratio"] > 0.5
    assert next(report_dir.glob("storage-*.html")).read_text().startswith("<!DOCTYPE html>")


def test_scheduled_migration(airflow_env: dict[str, str], seaweed: Any, tmp_path: Path) -> None:
    client = _bucket(seaweed, "e2e-legacy")
    _bucket(seaweed, "e2e-migrated")
    digests = {}
    for v in range(4):
        body = make_build(tmp_path / "src", v, size=200_000).read_bytes()
        client.put_object(Bucket="e2e-legacy", Key=f"releases/app/app-1.0.{v}.zip", Body=body)
        digests[f"app/app-1.0.{v}.zip"] = hashlib.sha256(body).hexdigest()
    for i in range(30):
        body = f"log {i}\n".encode() * 50
        client.put_object(Bucket="e2e-legacy", Key=f"releases/logs/{i}.log", Body=body)
        digests[f"logs/{i}.log"] = hashlib.sha256(body).hexdigest()
    client.put_object(Bucket="e2e-legacy", Key="releases/logs/skip.tmp", Body=b"tmp")
    before = _raw(client, "e2e-legacy")
    conf = {"source": "s3://e2e-legacy/releases/", "dest": "s3://e2e-migrated/archive/"}
    _dag_test(airflow_env, "scheduled_migration", conf)
    assert _raw(client, "e2e-legacy") == before
    store = DeltaStore(client)
    listed = sorted(o.key for o in store.list("e2e-migrated", "archive/", with_metadata=False))
    assert listed == sorted(f"archive/releases/{k}" for k in digests)
    for key, sha in digests.items():
        assert store.get("e2e-migrated", f"archive/releases/{key}", tmp_path / "o").sha256 == sha


def test_release_pipeline(airflow_env: dict[str, str], seaweed: Any, tmp_path: Path) -> None:
    client = _bucket(seaweed, "e2e-releases")
    store = DeltaStore(client)
    builds = [make_build(tmp_path / "rel", v, size=150_000) for v in (8, 9, 10)]
    for path in builds:
        store.put(path, "e2e-releases", f"nightly/app/{path.name}")
    conf = {"bucket": "e2e-releases", "newer_than": "2000-01-01T00:00:00+00:00", "up_to": "2100-01-01T00:00:00+00:00",
            "workdir": str(tmp_path / "w")}  # fmt: skip
    started = time.monotonic()
    out = _dag_test(airflow_env, "release_pipeline", conf)
    assert time.monotonic() - started < 300
    fetched = list((tmp_path / "w").rglob("*.zip"))
    assert [p.name for p in fetched] == ["app-1.0.10.zip"]  # newest by version, not by name
    assert _sha(fetched[0]) == _sha(builds[-1])
    assert out.count("check_release") >= 3
