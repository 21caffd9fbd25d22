"""The fast transport sends each bucket's requests where the client itself sends them: the URL comes from the
client's own endpoint resolution, never from a presigned URL (which, for some regions, names another host)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest
from botocore.awsrequest import AWSResponse, HTTPHeaders
from botocore.credentials import Credentials
from deltaglider_core.transport.fast_http import make_fast


class _Empty:
    def stream(self, **_: Any) -> Any:
        return iter(())


def _host_the_client_uses(client: Any, bucket: str) -> str:
    """Where a real HeadObject of this client goes (answered locally: nothing leaves the test)."""
    seen: list[str] = []

    def capture(request: Any, **_: Any) -> AWSResponse:
        seen.append(request.url)
        return AWSResponse(request.url, 200, HTTPHeaders(), _Empty())

    client.meta.events.register_first("before-send.s3.HeadObject", capture, unique_id="test-capture")
    try:
        client.head_object(Bucket=bucket, Key="some/key.zip")
    finally:
        client.meta.events.unregister("before-send.s3.HeadObject", unique_id="test-capture")
    return str(urlsplit(seen[0]).hostname)


@pytest.mark.parametrize("region", ["eu-west-3", "us-west-2", "ap-southeast-2", "us-east-1"])
def test_fast_path_host_is_the_clients_own(region: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DG_FAST_HEAD", raising=False)
    monkeypatch.delenv("DG_FAST_TRANSPORT", raising=False)
    client = boto3.client("s3", region_name=region, aws_access_key_id="AKIDTEST", aws_secret_access_key="secret")
    fast = make_fast(client, Credentials("AKIDTEST", "secret"))
    assert fast is not None
    layout = fast._layout("my-artifacts")
    assert layout is not None
    expected = _host_the_client_uses(client, "my-artifacts")
    assert layout.host == expected
    assert region in expected or region == "us-east-1"
    assert fast.declined == {}
