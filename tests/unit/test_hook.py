"""DeltaGliderHook: connection parsing, client settings, store, test_connection, provider registration."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_deltaglider.hooks.deltaglider import DeltaGliderHook
from airflow_provider_deltaglider.hooks.settings import SettingsError, settings_from_connection


class FakeConn:
    def __init__(self, login: str | None = None, password: str | None = None, host: str | None = None, **extra: Any):
        self.conn_id, self.login, self.password, self.host = "c1", login, password, host
        self.extra_dejson = extra


def _env_conn(monkeypatch: pytest.MonkeyPatch, conn_id: str, conn_type: str = "deltaglider", **fields: Any) -> None:
    payload = {"conn_type": conn_type, **fields}
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(payload))


def test_deltaglider_connection_settings() -> None:
    s = settings_from_connection(
        FakeConn(
            "AKIA1",
            "s3cr3t",
            endpoint_url="http://127.0.0.1:9000",
            region_name="eu-west-1",
            max_ratio="0.3",
            cache_backend="memory",
            cache_memory_size_mb="64",
            ec2_region_check="fail",
            retries=7,
            max_pool_connections=50,
        )
    )
    assert (s.access_key_id, s.secret_access_key, s.endpoint_url, s.region_name) == (
        "AKIA1",
        "s3cr3t",
        "http://127.0.0.1:9000",
        "eu-west-1",
    )
    assert (s.max_ratio, s.cache_backend, s.cache_memory_size_mb, s.ec2_region_check) == (0.3, "memory", 64, "fail")
    assert s.client_config == {
        "retries": {"max_attempts": 7, "mode": "standard"},
        "max_pool_connections": 50,
        "request_checksum_calculation": "when_required",
        "response_checksum_validation": "when_required",
    }
    assert "s3cr3t" not in repr(s)


def test_amazon_provider_extras_and_default_chain() -> None:
    s = settings_from_connection(
        FakeConn(
            aws_access_key_id="AKIA2",
            aws_secret_access_key="x",
            aws_session_token="tok",
            region_name="us-west-2",
            config_kwargs={"connect_timeout": 3},
        )
    )
    assert (s.access_key_id, s.session_token, s.region_name, s.endpoint_url) == ("AKIA2", "tok", "us-west-2", None)
    assert s.client_config["connect_timeout"] == 3
    assert "request_checksum_calculation" not in s.client_config  # AWS S3: keep boto3's defaults
    chain = settings_from_connection(FakeConn())
    assert chain.access_key_id is None and chain.secret_access_key is None and not chain.region_explicit


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"ec2_region_check": "maybe"}, "ec2_region_check='maybe'"),
        ({"cache_backend": "redis"}, "cache_backend='redis'"),
        ({"max_ratio": "2"}, "max_ratio=2.0 must be in (0, 1]"),
        ({"max_ratio": "lots"}, "max_ratio='lots' is not a valid float"),
        ({"endpoint_url": "minio:9000"}, "must start with http:// or https://"),
        ({"config_kwargs": "{nope"}, "config_kwargs is not valid JSON"),
        ({"fast_transport": "nope"}, "fast_transport='nope' is not a boolean"),
        ({"allow_unconditional_writes": "y"}, "allow_unconditional_writes='y' is not a boolean"),
        ({"deltaglider_compatible": 2}, "deltaglider_compatible=2 is not a boolean"),
        # #28, finding 12: refused when the connection is read, not by the first request
        ({"read_timeout": "inf"}, "read_timeout='inf' is not a valid float"),
        ({"connect_timeout": "nan"}, "connect_timeout='nan' is not a valid float"),
        ({"connect_timeout": 0}, "connect_timeout=0 must be at least 0.001"),
        ({"retries": -1}, "retries=-1 must be at least 1"),
        ({"max_pool_connections": 0}, "max_pool_connections=0 must be at least 1"),
        ({"cache_disk_size_mb": -5}, "cache_disk_size_mb=-5 must be at least 0"),
        ({"config_kwargs": {"no_such_option": 1}}, "config_kwargs is not a botocore Config"),
        ({"config_kwargs": {"retries": {"mode": "sometimes"}}}, "config_kwargs is not a botocore Config"),
        ({"endpoint_url": "http://AKIA:s3cr3t@minio:9000"}, "endpoint_url carries credentials"),
        # found by an outside probe: the same values inside config_kwargs, counts that are not whole, bad URLs
        ({"config_kwargs": {"read_timeout": -1}}, "config_kwargs.read_timeout=-1 must be at least 0.001"),
        ({"config_kwargs": {"connect_timeout": float("inf")}}, "config_kwargs.connect_timeout=inf is not a valid"),
        ({"config_kwargs": {"max_pool_connections": 0}}, "config_kwargs.max_pool_connections=0 must be at least 1"),
        ({"config_kwargs": {"retries": {"max_attempts": 0}}}, "config_kwargs.retries.max_attempts=0 must be at"),
        ({"max_pool_connections": 2.7}, "max_pool_connections=2.7 is not a valid int"),
        ({"cache_disk_size_mb": 3.9}, "cache_disk_size_mb=3.9 is not a valid int"),
        ({"endpoint_url": "http://[::1"}, "endpoint_url is not a valid URL"),
    ],
)
def test_bad_extras_are_explained(extra: dict[str, Any], message: str) -> None:
    with pytest.raises(SettingsError) as err:
        settings_from_connection(FakeConn(**extra))
    assert message in str(err.value) and "'c1'" in str(err.value)
    assert "s3cr3t" not in str(err.value)


def test_the_strict_extra_reaches_the_store() -> None:
    from deltaglider_core import StoreConfig

    assert settings_from_connection(FakeConn(strict="true")).strict is True
    assert settings_from_connection(FakeConn()).strict is None
    assert StoreConfig.from_env({}, strict=settings_from_connection(FakeConn(strict="yes")).strict).strict is True


def test_a_cache_size_of_zero_keeps_nothing(tmp_path: Path) -> None:
    """0 is a size (#28, finding 12): it no longer means the default 4096 MB."""
    from deltaglider_core import StoreConfig

    config = StoreConfig.from_env({}, cache_disk_size_mb=0, cache_memory_size_mb=0)
    assert (config.cache_disk_size_mb, config.cache_memory_size_mb) == (0, 0)
    assert StoreConfig.from_env({"DG_CACHE_DISK_SIZE_MB": "0"}).cache_disk_size_mb == 0
    assert StoreConfig.from_env({}).cache_disk_size_mb == 4096


@pytest.mark.parametrize(
    ("value", "expected"),
    [(True, True), ("TRUE", True), ("1", True), ("yes", True), ("On", True), (1, True),
     (False, False), ("false", False), ("0", False), ("no", False), ("OFF", False), (0, False)],
)  # fmt: skip
def test_boolean_extras_are_read_one_way(value: Any, expected: bool) -> None:
    flags = ("allow_unconditional_writes", "fast_transport", "deltaglider_compatible")
    s = settings_from_connection(FakeConn(**dict.fromkeys(flags, value)))
    assert (s.allow_unconditional_writes, s.fast_transport, s.deltaglider_compatible) == (expected,) * 3
    unset = settings_from_connection(FakeConn())
    assert (unset.allow_unconditional_writes, unset.fast_transport, unset.deltaglider_compatible) == (False, True, None)


def test_hook_builds_a_working_store(
    moto_s3: Any, monkeypatch: pytest.MonkeyPatch, builds: Any, tmp_path: Path
) -> None:
    _env_conn(monkeypatch, "dg_moto", login="testing", password="testing", extra={"region_name": "us-east-1"})
    hook = DeltaGliderHook("dg_moto")
    store = hook.get_store()
    assert hook.get_store() is store
    v0 = builds(0)
    store.put(v0, moto_s3.bucket, "a/app-1.0.0.zip")
    assert store.get(moto_s3.bucket, "a/app-1.0.0.zip", tmp_path / "o.zip").sha256
    assert (tmp_path / "o.zip").read_bytes() == v0.read_bytes()
    assert hook.get_client().meta.region_name == "us-east-1"
    ok, message = hook.test_connection()
    assert ok and "1 bucket(s) visible" in message


def test_aws_connection_type_works_unchanged(moto_s3: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    _env_conn(monkeypatch, "aws_legacy", conn_type="aws", extra={"region_name": "eu-central-1"})
    hook = DeltaGliderHook("aws_legacy")
    assert hook.get_client().meta.region_name == "eu-central-1"
    assert hook.settings.region_explicit


def test_test_connection_reports_real_reason_without_secret(seaweed: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    _env_conn(
        monkeypatch,
        "dg_bad",
        login=seaweed.access_key,
        password="WRONG-SECRET-VALUE-123",
        extra={"endpoint_url": seaweed.endpoint_url, "region_name": "us-east-1", "retries": 1},
    )
    ok, message = DeltaGliderHook("dg_bad").test_connection()
    assert not ok
    assert message.startswith("S3 refused the request: SignatureDoesNotMatch: "), message
    assert "WRONG-SECRET-VALUE-123" not in message


def test_hook_overrides_connection_region_and_endpoint(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    logger = logging.getLogger("deltaglider.test.hook")
    _env_conn(monkeypatch, "dg_o", extra={"region_name": "eu-west-1"})
    hook = DeltaGliderHook("dg_o", region_name="ap-south-1", endpoint_url="http://127.0.0.1:1")
    assert (hook.settings.region_name, hook.settings.endpoint_url) == ("ap-south-1", "http://127.0.0.1:1")
    monkeypatch.setattr(DeltaGliderHook, "log", logger)  # a plain logger caplog sees on every Airflow
    with caplog.at_level(logging.INFO, logger=logger.name):
        result = hook.preflight("some-bucket")
    assert result.verdict == "skipped" and "custom endpoint" in result.message
    assert "DeltaGlider preflight: verdict=skipped on_ec2=None" in caplog.text  # one line in every task's log


def test_ui_metadata() -> None:
    behaviour = DeltaGliderHook.get_ui_field_behaviour()
    assert behaviour["relabeling"] == {"login": "AWS Access Key ID", "password": "AWS Secret Access Key"}
    assert {"schema", "port"} <= set(behaviour["hidden_fields"])
    pytest.importorskip("wtforms", reason="only Airflow < 3.2 (with wtforms) calls get_connection_form_widgets")
    widgets = DeltaGliderHook.get_connection_form_widgets()
    assert {"endpoint_url", "region_name", "max_ratio", "ec2_region_check", "cache_backend"} <= set(widgets)


def test_providers_manager_registers_everything() -> None:
    from airflow.providers_manager import ProvidersManager

    pm = ProvidersManager()
    assert "airflow-provider-deltaglider" in pm.providers
    try:  # Airflow >= 3.2: tasks resolve hooks through the SDK's runtime manager
        from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime

        hooks = ProvidersManagerTaskRuntime().hooks
    except ImportError:  # Airflow 3.0, 3.1
        hooks = pm.hooks
    assert hooks["deltaglider"] is not None
    assert hooks["deltaglider"].hook_class_name == "airflow_provider_deltaglider.hooks.deltaglider.DeltaGliderHook"
    assert pm.field_behaviours["deltaglider"]["relabeling"]["login"] == "AWS Access Key ID"
    widgets = pm.connection_form_widgets
    assert "extra__deltaglider__endpoint_url" in widgets
    assert widgets["extra__deltaglider__aws_session_token"].is_sensitive
    info = pm.providers["airflow-provider-deltaglider"].data
    assert info["sensors"][0]["python-modules"] == ["airflow_provider_deltaglider.sensors.release"]


def test_connection_max_ratio_reaches_the_store(moto_s3: Any, monkeypatch: pytest.MonkeyPatch, builds: Any) -> None:
    extra = {"region_name": "us-east-1", "max_ratio": "0.0001"}
    _env_conn(monkeypatch, "dg_strict", login="testing", password="testing", extra=extra)
    store = DeltaGliderHook("dg_strict").get_store()
    assert store.max_ratio == 0.0001
    store.put(builds(0), moto_s3.bucket, "a/app-1.0.0.zip")
    assert store.put(builds(1), moto_s3.bucket, "a/app-1.0.1.zip").kind == "direct"
    _env_conn(monkeypatch, "dg_loose", login="testing", password="testing", extra={"region_name": "us-east-1"})
    assert DeltaGliderHook("dg_loose").get_store().put(builds(2), moto_s3.bucket, "a/app-1.0.2.zip").kind == "delta"


def test_every_documented_extra_has_a_form_field() -> None:
    import re

    from airflow_provider_deltaglider.provider_info import CONN_FIELDS

    table = (Path(__file__).resolve().parents[2] / "docs" / "connection.md").read_text().split("## ")[0]
    documented = {
        name for row in re.findall(r"^\| extra (.+?) \|", table, re.M) for name in re.findall(r"`(\w+)`", row)
    }
    assert {"bucket", "verify", "config_kwargs", "connect_timeout", "read_timeout"} <= documented
    assert documented <= set(CONN_FIELDS), f"documented extras without a form field: {documented - set(CONN_FIELDS)}"
