"""A listing that loses the fast transport on any page resumes from S3's own ContinuationToken through boto3:
no key skipped or repeated, no CommonPrefixes dropped, and delete() never removes a reference still in use.

SeaweedFS's continuation token is the last key of the page, so keys ending in ``___<n>`` (which botocore's
paginator read as "skip n") are part of the listing; pages are 3 keys long to get many page boundaries.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from deltaglider_core import DeltaStore

pytestmark = pytest.mark.integration
KEYS = [f"logs/run___{i}" for i in range(1, 10)] + [f"logs/dir{d}/f___{i}" for d in range(3) for i in (2, 9)]


def _listing(store: DeltaStore, bucket: str) -> tuple[list[str], list[str]]:
    flat = [o.key for o in store.list(bucket, "logs/", with_metadata=False)]
    folders = [p for page in store.s3.pages(bucket, "logs/", delimiter="/") for p in page.prefixes]
    return flat, folders


def _failing_on(store: DeltaStore, page: int) -> dict[str, int]:
    """The fast transport declines exactly the ``page``-th LIST request it is asked (as on a 5xx or a reset)."""
    fast = store.s3.fast
    assert fast is not None, "the fast transport must be on for this test"
    real = fast.list_page
    seen = {"fast": 0, "declined": 0}

    def list_page(params: dict[str, Any]) -> Any:
        seen["fast"] += 1
        if seen["fast"] == page:
            seen["declined"] += 1
            return None
        return real(params)

    fast.list_page = list_page  # type: ignore[method-assign]
    return seen


def test_a_failed_page_resumes_from_the_s3_token(seaweed_s3: Any) -> None:
    for key in KEYS:
        seaweed_s3.client.put_object(Bucket=seaweed_s3.bucket, Key=key, Body=b"x")
    clean = seaweed_s3.store()
    clean.s3.page_size = 3
    expected = _listing(clean, seaweed_s3.bucket)
    assert expected[0] == sorted(KEYS) and expected[1] == ["logs/dir0/", "logs/dir1/", "logs/dir2/"]
    pages = -(-len(KEYS) // 3) + -(-(9 + 3) // 3)  # flat listing pages + delimiter listing pages
    for position in range(1, pages + 1):
        store = seaweed_s3.store()
        store.s3.page_size = 3
        seen = _failing_on(store, position)
        assert _listing(store, seaweed_s3.bucket) == expected, f"fault on LIST request {position}"
        assert seen["declined"] == 1


def test_prune_keeps_a_reference_named_past_a_failed_page(seaweed_s3: Any, builds: Any, tmp_path: Path) -> None:
    """Prune's listing, which decides whether a reference is still named by a delta, survives a failed page:
    the named reference stays, only the unnamed one is trashed, whatever page fails."""
    import datetime as dt

    writer = seaweed_s3.store()
    for v in range(3):
        writer.put(builds(v), seaweed_s3.bucket, f"rel/app-1.0.{v}.zip")
    writer.put(builds(0, seed=5, name="gone"), seaweed_s3.bucket, "old/gone-1.0.0.zip")
    writer.delete(seaweed_s3.bucket, "old/gone-1.0.0.zip")  # old/reference.bin is now named by nothing
    for i in range(1, 8):
        seaweed_s3.client.put_object(Bucket=seaweed_s3.bucket, Key=f"rel/aaa___{i}", Body=b"noise")
    for position in (1, 2, 3, 4):
        pruner = seaweed_s3.store()
        pruner.s3.page_size = 2
        _failing_on(pruner, position)
        report = pruner.prune(seaweed_s3.bucket, grace=dt.timedelta(0), dry_run=True)
        assert report.trashed == ("old/reference.bin",), f"fault on LIST request {position}"
    got = seaweed_s3.store().get(seaweed_s3.bucket, "rel/app-1.0.2.zip", tmp_path / "o.zip")
    assert Path(got.path).read_bytes() == builds(2).read_bytes()
