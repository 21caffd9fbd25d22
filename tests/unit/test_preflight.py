"""EC2 region preflight against a real IMDSv2 server on loopback."""

from __future__ import annotations

import socket
import time
import urllib.request
from collections.abc import Iterator

import pytest
from deltaglider_core.ops import ec2

from tests.imds import TOKEN, serve_imds, url


@pytest.fixture(autouse=True)
def _fresh_cache(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("AWS_EC2_METADATA_DISABLED", raising=False)
    monkeypatch.delenv("DG_DISABLE_EC2_DETECTION", raising=False)
    ec2.clear_cache()
    yield
    ec2.clear_cache()


def _env(endpoint: str) -> dict[str, str]:
    return {"AWS_EC2_METADATA_SERVICE_ENDPOINT": endpoint}


def test_server_enforces_tokens() -> None:
    server = serve_imds("eu-west-1", "eu-west-1a")
    try:
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(url(server) + "/latest/meta-data/placement/region", timeout=1)
        assert err.value.code == 401
        req = urllib.request.Request(
            url(server) + "/latest/meta-data/placement/region", headers={"X-aws-ec2-metadata-token": TOKEN}
        )
        assert urllib.request.urlopen(req, timeout=1).read() == b"eu-west-1"
    finally:
        server.shutdown()


def test_aligned_region() -> None:
    server = serve_imds("eu-west-1", "eu-west-1b")
    try:
        res = ec2.preflight("eu-west-1", region_explicit=True, env=_env(url(server)))
    finally:
        server.shutdown()
    assert (res.verdict, res.on_ec2, res.instance_region, res.availability_zone) == (
        "aligned",
        True,
        "eu-west-1",
        "eu-west-1b",
    )


def test_mismatch_warns_or_fails() -> None:
    server = serve_imds("eu-west-1", "eu-west-1a")
    try:
        warn = ec2.preflight("us-east-1", region_explicit=True, env=_env(url(server)))
        assert warn.verdict == "mismatch" and "cross-region transfer charges" in warn.message
        default = ec2.preflight("us-east-1", region_explicit=False, env=_env(url(server)))
        assert default.verdict == "mismatch_default" and "region_name='eu-west-1'" in default.message
        with pytest.raises(ec2.RegionMismatch, match="EC2 instance in eu-west-1 but S3 region set to us-east-1"):
            ec2.preflight("us-east-1", region_explicit=True, mode="fail", env=_env(url(server)))
    finally:
        server.shutdown()


def test_bucket_region_mismatch_is_reported() -> None:
    server = serve_imds("eu-west-1", "eu-west-1a")
    try:
        res = ec2.preflight("eu-west-1", region_explicit=True, bucket_region="us-west-2", env=_env(url(server)))
    finally:
        server.shutdown()
    assert res.is_mismatch and "bucket is in us-west-2" in res.message


def test_imds_absent_is_fast_and_not_on_ec2() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: connection refused
    started = time.monotonic()
    res = ec2.preflight("eu-west-1", region_explicit=True, env=_env(f"http://127.0.0.1:{port}"))
    assert time.monotonic() - started < 1.5
    assert res.verdict == "not_on_ec2" and res.on_ec2 is False


def test_imdsv1_only_host_is_unverifiable_never_fatal() -> None:
    server = serve_imds("eu-west-1", "eu-west-1a", v2=False)
    try:
        res = ec2.preflight("us-east-1", region_explicit=True, mode="fail", env=_env(url(server)))
    finally:
        server.shutdown()
    assert res.verdict == "unverifiable" and res.on_ec2 is None
    assert "IMDSv1 not used" in res.message


def test_disabled_custom_endpoint_and_off() -> None:
    env = {"AWS_EC2_METADATA_DISABLED": "true", "AWS_EC2_METADATA_SERVICE_ENDPOINT": "http://127.0.0.1:9"}
    assert ec2.preflight("x", region_explicit=False, env=env).verdict == "not_on_ec2"
    assert ec2.preflight("x", region_explicit=False, env={"DG_DISABLE_EC2_DETECTION": "1"}).on_ec2 is False
    skipped = ec2.preflight("x", region_explicit=False, endpoint_url="http://127.0.0.1:1")
    assert skipped.verdict == "skipped" and "custom endpoint" in skipped.message
    assert ec2.preflight("x", region_explicit=False, mode="off").verdict == "skipped"


def test_result_is_cached_per_process() -> None:
    server = serve_imds("eu-west-1", "eu-west-1a")
    endpoint = url(server)
    first = ec2.detect_ec2(_env(endpoint))
    server.shutdown()
    server.server_close()
    assert ec2.detect_ec2(_env(endpoint)) == first


def test_operator_fails_in_preflight_before_moving_data(
    moto_s3: object, builds: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    import datetime as dt
    from typing import Any

    from airflow.sdk import DAG

    from airflow_provider_deltaglider.operators.upload import DeltaGliderUploadOperator
    from tests.airflow_runs import conn_env, run_dag

    env: Any = moto_s3
    server = serve_imds("eu-west-1", "eu-west-1c")
    monkeypatch.setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", url(server))
    name, value = conn_env("dg_ec2", env, region_name="us-east-1", ec2_region_check="fail")
    monkeypatch.setenv(name, value)
    start = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
    try:
        with DAG("preflight_fail", schedule=None, start_date=start) as dag:
            DeltaGliderUploadOperator(
                task_id="upload", source=str(builds(0)), dest=f"s3://{env.bucket}/rel/",  # type: ignore[operator]
                deltaglider_conn_id="dg_ec2",
            )  # fmt: skip
            DeltaGliderUploadOperator(
                task_id="upload_warn", source=str(builds(1)), dest=f"s3://{env.bucket}/warn/",  # type: ignore[operator]
                deltaglider_conn_id="dg_ec2", ec2_region_check="warn",
            )  # fmt: skip
        result = run_dag(dag)
    finally:
        server.shutdown()
    assert result.states == {"upload": "failed", "upload_warn": "success"}
    assert result.error("upload").startswith(
        "EC2 region check failed: EC2 instance in eu-west-1 but S3 region set to us-east-1"
    ), "the task must fail on the preflight's own message"
    keys = [o["Key"] for o in env.client.list_objects_v2(Bucket=env.bucket).get("Contents", [])]
    assert keys and all(k.startswith("warn/") for k in keys)  # nothing moved for the failed task
