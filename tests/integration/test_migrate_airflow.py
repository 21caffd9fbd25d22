"""Migration on SeaweedFS: mapped shards through Airflow, and a worker killed mid-run then re-run."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from deltaglider_core import DeltaStore
from deltaglider_core.ops.migrate import dest_key_for
from deltaglider_core.storage.format import DELTA_SUFFIX

from tests.airflow_runs import conn_env, run_dag

pytestmark = pytest.mark.integration
START = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)


def _fill_source(env: Any, builds: Any, versions: int = 6, logs: int = 60) -> dict[str, str]:
    digests: dict[str, str] = {}
    for space in ("app", "lib", "svc"):
        for v in range(versions):
            body = builds(v, name=space).read_bytes()
            key = f"src/{space}/{space}-1.0.{v}.zip"
            env.client.put_object(Bucket=env.bucket, Key=key, Body=body)
            digests[key] = hashlib.sha256(body).hexdigest()
    for i in range(logs):
        body = os.urandom(2000 + i)
        env.client.put_object(Bucket=env.bucket, Key=f"src/logs/{i:03d}.log", Body=body)
        digests[f"src/logs/{i:03d}.log"] = hashlib.sha256(body).hexdigest()
    return digests


def _raw_keys(env: Any, bucket: str, prefix: str) -> list[str]:
    pages = env.client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return [o["Key"] for p in pages for o in p.get("Contents", [])]


def _assert_complete(env: Any, bucket: str, digests: dict[str, str], tmp_path: Path) -> None:
    store = DeltaStore(env.client)
    expected = {dest_key_for(k, "src/", "mirror/", True): sha for k, sha in digests.items()}
    raw = _raw_keys(env, bucket, "mirror/")
    plain = {k for k in raw if not k.endswith(DELTA_SUFFIX)}
    duplicated = [k for k in raw if k.endswith(DELTA_SUFFIX) and k[: -len(DELTA_SUFFIX)] in plain]
    assert duplicated == []
    assert sorted(o.key for o in store.list(bucket, "mirror/", with_metadata=False)) == sorted(expected)
    for key, sha in expected.items():
        assert store.get(bucket, key, tmp_path / "check").sha256 == sha


def test_mapped_shards_migrate_everything(seaweed_s3: Any, builds: Any, tmp_path: Path, monkeypatch: Any) -> None:
    from airflow.sdk import DAG

    from airflow_provider_deltaglider.operators.migrate import DeltaGliderMigrateOperator
    from airflow_provider_deltaglider.operators.stats import DeltaGliderStatsOperator

    digests = _fill_source(seaweed_s3, builds, versions=3, logs=20)
    dest = f"dst-{seaweed_s3.bucket}"[:63]
    seaweed_s3.client.create_bucket(Bucket=dest)
    name, value = conn_env("dg_sw", seaweed_s3)
    monkeypatch.setenv(name, value)
    with DAG("migrate_mapped", schedule=None, start_date=START) as dag:
        shards = DeltaGliderMigrateOperator.partial(
            task_id="migrate", source=f"s3://{seaweed_s3.bucket}/src/", dest=f"s3://{dest}/mirror/",
            deltaglider_conn_id="dg_sw", max_workers=4,
        ).expand(shard=DeltaGliderMigrateOperator.shards(3))  # fmt: skip
        stats = DeltaGliderStatsOperator(task_id="stats", location=f"s3://{dest}/mirror/", deltaglider_conn_id="dg_sw")
        shards >> stats
    result = run_dag(dag)
    assert result.state == "success", result.states
    reports = [result.xcoms[f"migrate[{i}]"] for i in range(3)]
    assert sum(r["migrated"] for r in reports) == len(digests)
    assert all(r["scanned"] == len(digests) for r in reports)
    assert sorted(r["shard"] for r in reports) == ["0/3", "1/3", "2/3"]
    assert result.xcoms["stats"]["objects"] == len(digests)
    assert result.xcoms["stats"]["original_bytes"] == sum(r["bytes_in"] for r in reports)
    _assert_complete(seaweed_s3, dest, digests, tmp_path)


KILLED_WORKER = """
import sys, boto3
from deltaglider_core import DeltaStore
from deltaglider_core.ops.migrate import Migration
endpoint, access, secret, src, dst = sys.argv[1:6]
client = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=access, aws_secret_access_key=secret,
                      region_name="us-east-1")
Migration(DeltaStore(client), None, src, "src/", dst, "mirror/", max_workers=1).run()
"""


def test_killed_migration_resumes_to_a_complete_copy(seaweed_s3: Any, builds: Any, tmp_path: Path) -> None:
    digests = _fill_source(seaweed_s3, builds)
    dest = f"kil-{seaweed_s3.bucket}"[:63]
    seaweed_s3.client.create_bucket(Bucket=dest)
    args = [seaweed_s3.endpoint_url, seaweed_s3.access_key, seaweed_s3.secret_key, seaweed_s3.bucket, dest]
    proc = subprocess.Popen([sys.executable, "-c", KILLED_WORKER, *args])
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(_raw_keys(seaweed_s3, dest, "mirror/")) < 12:
        assert proc.poll() is None, "migration finished before it could be interrupted"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = len(_raw_keys(seaweed_s3, dest, "mirror/"))
    assert partial > 0
    from deltaglider_core.ops.migrate import Migration

    store = seaweed_s3.store()
    rerun = Migration(store, None, seaweed_s3.bucket, "src/", dest, "mirror/").run()
    assert rerun.failed == 0
    assert rerun.skipped > 0 and rerun.migrated + rerun.skipped == len(digests)
    _assert_complete(seaweed_s3, dest, digests, tmp_path)


def test_the_source_is_read_through_its_own_connection(
    seaweed_s3: Any, seaweed: Any, builds: Any, tmp_path: Path, monkeypatch: Any
) -> None:
    """``source_conn_id`` (#29: the outside probe's bug "migrate reads the source with the destination
    connection" went unnoticed): the source connection points at a loopback proxy in front of the server, the
    destination at the server itself. Every source read must cross the proxy, and no destination write."""
    from airflow.sdk import DAG

    from airflow_provider_deltaglider.operators.migrate import DeltaGliderMigrateOperator
    from tests.faults import Credentials as ProxyCredentials
    from tests.faults import FaultProxy

    digests = _fill_source(seaweed_s3, builds, versions=2, logs=5)
    dest = f"scn-{seaweed_s3.bucket}"[:63]
    seaweed_s3.client.create_bucket(Bucket=dest)
    with FaultProxy(seaweed.endpoint_url, ProxyCredentials(seaweed.access_key, seaweed.secret_key)) as proxy:
        for conn_id, endpoint in (("dg_dst", seaweed.endpoint_url), ("dg_src", proxy.endpoint_url)):
            server = SimpleNamespace(
                endpoint_url=endpoint, access_key=seaweed.access_key, secret_key=seaweed.secret_key
            )
            name, value = conn_env(conn_id, server)
            monkeypatch.setenv(name, value)
        with DAG("migrate_two_connections", schedule=None, start_date=START) as dag:
            DeltaGliderMigrateOperator(
                task_id="migrate", source=f"s3://{seaweed_s3.bucket}/src/", dest=f"s3://{dest}/mirror/",
                deltaglider_conn_id="dg_dst", source_conn_id="dg_src",
            )  # fmt: skip
        result = run_dag(dag)
        seen = list(proxy.log)
    assert result.state == "success", result.states
    assert result.xcoms["migrate"]["migrated"] == len(digests)
    source_reads = [path for method, path, _ in seen if method == "GET" and f"/{seaweed_s3.bucket}" in path]
    assert len(source_reads) >= len(digests)  # a LIST and a GET per object, at least
    assert [path for method, path, _ in seen if method == "PUT" or f"/{dest}" in path] == []
    _assert_complete(seaweed_s3, dest, digests, tmp_path)
