"""``aws`` connections go through the Amazon provider's session machinery; nothing they ask for is ignored.

STS is moto's (in-process ``mock_aws``): an assume-role connection must sign its S3 requests with the
temporary credentials STS issued, not the worker's own keys.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_deltaglider.hooks import session as session_module
from airflow_provider_deltaglider.hooks.deltaglider import DeltaGliderHook
from airflow_provider_deltaglider.hooks.settings import SettingsError
from tests.tls import self_signed, tls_server

ROLE = "arn:aws:iam::123456789012:role/artifact-writer"
ONE_TRY = {"retries": {"max_attempts": 1}, "s3": {"addressing_style": "path"}}  # path style: stay on localhost


def _conn(monkeypatch: pytest.MonkeyPatch, conn_id: str, conn_type: str, **fields: Any) -> None:
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps({"conn_type": conn_type, **fields}))


def _signing_keys(client: Any) -> list[tuple[str, bool]]:
    """(access key id, has session token) of every request the client signs from now on."""
    seen: list[tuple[str, bool]] = []

    def record(request: Any, **_: Any) -> None:
        auth = request.headers.get("Authorization", b"")
        auth = auth.decode() if isinstance(auth, bytes) else auth
        match = re.search(r"Credential=([^/]+)/", auth)
        seen.append((match.group(1) if match else "", "X-Amz-Security-Token" in request.headers))

    client.meta.events.register("before-send.s3", record)
    return seen


def test_assume_role_connection_signs_with_the_assumed_identity(
    moto_s3: Any, monkeypatch: pytest.MonkeyPatch, builds: Any, tmp_path: Path
) -> None:
    _conn(monkeypatch, "aws_role", "aws", extra={"region_name": "us-east-1", "role_arn": ROLE})
    hook = DeltaGliderHook("aws_role")
    client = hook.get_client()
    keys = _signing_keys(client)
    store = hook.get_store()
    store.put(builds(0), moto_s3.bucket, "rel/app-1.0.0.zip")
    assert store.get(moto_s3.bucket, "rel/app-1.0.0.zip", tmp_path / "o.zip").sha256
    assert keys, "no S3 request was signed"
    assert {key for key, _ in keys} != {"testing"}  # not the worker's own identity (AWS_ACCESS_KEY_ID)
    assert all(key.startswith("ASIA") and token for key, token in keys)  # STS temporary credentials


def test_service_config_endpoint_and_explicit_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    extra = {"region_name": "eu-west-1", "service_config": {"s3": {"endpoint_url": "http://127.0.0.1:9333"}}}
    _conn(monkeypatch, "aws_svc", "aws", extra=extra)
    assert DeltaGliderHook("aws_svc").get_client().meta.endpoint_url == "http://127.0.0.1:9333"
    override = DeltaGliderHook("aws_svc", endpoint_url="http://127.0.0.1:9444").get_client()
    assert override.meta.endpoint_url == "http://127.0.0.1:9444" and override.meta.region_name == "eu-west-1"


def test_aws_extras_are_refused_by_name_without_the_amazon_provider(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(session_module, "amazon_provider_installed", lambda: False)
    _conn(monkeypatch, "aws_noamz", "aws", extra={"role_arn": ROLE, "profile_name": "ci"})
    with pytest.raises(SettingsError) as err:
        DeltaGliderHook("aws_noamz").get_client()
    message = str(err.value)
    assert "Connection 'aws_noamz': extra(s) role_arn, profile_name need the Amazon provider" in message
    assert "airflow-provider-deltaglider[amazon]" in message
    _conn(monkeypatch, "aws_plain", "aws", extra={"region_name": "eu-west-1"})
    assert DeltaGliderHook("aws_plain").get_client().meta.region_name == "eu-west-1"  # nothing to refuse


def test_deltaglider_connection_refuses_aws_only_extras(monkeypatch: pytest.MonkeyPatch) -> None:
    _conn(monkeypatch, "dg_role", "deltaglider", extra={"role_arn": ROLE})
    with pytest.raises(SettingsError, match=r"extra\(s\) role_arn are honoured on connections of type 'aws' only"):
        DeltaGliderHook("dg_role").get_client()


def test_verify_extra_and_parameter_on_a_deltaglider_connection(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from botocore.exceptions import SSLError

    cert, key = self_signed(tmp_path)
    port = tls_server(cert, key, answers=10)
    endpoint = f"https://localhost:{port}"
    base = {"login": "ak", "password": "sk"}
    _conn(monkeypatch, "dg_tls", "deltaglider", **base, extra={"endpoint_url": endpoint, "verify": str(cert)})
    trusted = DeltaGliderHook("dg_tls", client_config=ONE_TRY).get_client()
    assert trusted.head_bucket(Bucket="b")["ResponseMetadata"]["HTTPStatusCode"] == 200
    _conn(monkeypatch, "dg_default", "deltaglider", **base, extra={"endpoint_url": endpoint})
    strict = DeltaGliderHook("dg_default", client_config=ONE_TRY).get_client()
    with pytest.raises(SSLError):
        strict.head_bucket(Bucket="b")  # the system CAs do not know our certificate
    by_param = DeltaGliderHook("dg_default", verify=str(cert), client_config=ONE_TRY)
    assert by_param.get_client().head_bucket(Bucket="b")["ResponseMetadata"]["HTTPStatusCode"] == 200
    _conn(monkeypatch, "dg_badca", "deltaglider", **base, extra={"endpoint_url": endpoint, "verify": "/nope.pem"})
    with pytest.raises(SettingsError, match=r"verify='/nope.pem' is neither true/false nor an existing CA bundle"):
        DeltaGliderHook("dg_badca").get_client()
