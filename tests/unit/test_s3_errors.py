"""One funnel maps botocore errors to typed errors that keep the S3 code, request id, HTTP status and whether a
retry may help (what an operator needs to act, and what AWS support asks for)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from deltaglider_core import BucketNotFound, DeltaStore, NotFound
from deltaglider_core.errors import AccessDenied, StorageError


def _answer(client: Any, operation: str, status: int, code: str, request_id: str) -> None:
    """Make the client receive this S3 error answer for ``operation`` (botocore's own before-send hook)."""
    from botocore.awsrequest import AWSResponse

    body = f"<Error><Code>{code}</Code><Message>{code} says so</Message><RequestId>{request_id}</RequestId></Error>"

    class Raw:
        def stream(self, **_: Any) -> Any:
            yield body.encode()

    def reply(request: Any, **_: Any) -> AWSResponse:
        headers = {"x-amz-request-id": request_id, "Content-Type": "application/xml"}
        response = AWSResponse(request.url, status, headers, Raw())
        response._content = body.encode()
        return response

    client.meta.events.register(f"before-send.s3.{operation}", reply)


def _client() -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client("s3", region_name="us-east-1", config=Config(retries={"max_attempts": 1}))


def test_missing_bucket_and_key_carry_the_s3_details(moto_s3: Any, tmp_path: Path) -> None:
    store = DeltaStore(moto_s3.client)
    with pytest.raises(BucketNotFound) as missing_bucket:
        list(store.list("no-such-bucket-ee"))
    assert (missing_bucket.value.status, missing_bucket.value.retryable) == (404, False)
    with pytest.raises(NotFound) as missing_key:
        store.s3.download(moto_s3.bucket, "rel/none.zip", tmp_path / "x")
    error = missing_key.value
    assert (error.code, error.status, error.retryable) == ("NoSuchKey", 404, False)
    assert error.request_id


def test_throttling_is_retryable_with_code_status_and_request_id(moto_s3: Any) -> None:
    client = _client()
    _answer(client, "ListObjectsV2", 503, "SlowDown", "REQ-503-XYZ")
    with pytest.raises(StorageError) as err:
        list(DeltaStore(client).list(moto_s3.bucket))
    error = err.value
    assert (error.code, error.status, error.request_id, error.retryable) == ("SlowDown", 503, "REQ-503-XYZ", True)
    assert f"S3 refused to list s3://{moto_s3.bucket}/: SlowDown" in str(error) and "request id REQ-503-XYZ" in str(
        error
    )


def test_access_denied_is_typed_and_final(moto_s3: Any, tmp_path: Path) -> None:
    client = _client()
    _answer(client, "PutObject", 403, "AccessDenied", "REQ-403")
    notes = tmp_path / "notes.txt"
    notes.write_text("n")
    with pytest.raises(AccessDenied) as err:
        DeltaStore(client).put(notes, moto_s3.bucket, "rel/notes.txt")
    assert (err.value.code, err.value.status, err.value.retryable) == ("AccessDenied", 403, False)
    assert str(err.value).startswith(f"Access denied while trying to upload s3://{moto_s3.bucket}/rel/notes.txt")
