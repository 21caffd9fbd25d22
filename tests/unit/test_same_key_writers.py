"""Two writers of one key, one storing a delta and the other the file whole (a retry overlapping its zombie
attempt, two runs with different max_ratio), with the interleaving forced: the protocol in forms.py."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from deltaglider_core import DeltaStore, StoreConfig
from deltaglider_core.errors import StorageError

from tests.interleave import Intercept

KEY = "rel/app.zip"
WHOLE = 0.0001  # a max_ratio no delta meets: that writer stores the file whole


def _keys(env: Any) -> list[str]:
    return sorted(o["Key"] for o in env.client.list_objects_v2(Bucket=env.bucket).get("Contents", []))


def _read(env: Any, tmp_path: Path) -> bytes:
    got = DeltaStore(env.client).get(env.bucket, KEY, tmp_path / "read.zip")
    return Path(got.path).read_bytes()


def _seed(env: Any, builds: Any) -> None:
    DeltaStore(env.client).put(builds(0), env.bucket, "rel/app-1.0.0.zip")  # the deltaspace's reference


def test_whole_write_between_delta_put_and_its_cleanup(moto_s3: Any, builds: Any, tmp_path: Path) -> None:
    """The issue's interleaving: the delta is written, the whole writer runs start to end, then the delta
    writer cleans up. Before, each deleted the other's form and the key was gone."""
    _seed(moto_s3, builds)
    v1, v2 = builds(1), builds(2)
    racing = Intercept(moto_s3.client)
    whole = racing.after(
        "put_object",
        lambda _: DeltaStore(moto_s3.client, StoreConfig(max_ratio=WHOLE)).put(v2, moto_s3.bucket, KEY),
        Key=KEY + ".delta",
    )
    assert DeltaStore(racing).put(v1, moto_s3.bucket, KEY).kind == "delta"
    assert whole.fired == 1
    # The whole writer saw the delta before its own PUT, so it took effect last and removed exactly that delta.
    assert _keys(moto_s3) == ["rel/app-1.0.0.zip.delta", KEY, "rel/reference.bin"]
    assert _read(moto_s3, tmp_path) == v2.read_bytes()


def test_delta_write_between_whole_put_and_its_cleanup(moto_s3: Any, builds: Any, tmp_path: Path) -> None:
    """The mirror image: an older delta exists; the whole copy is written, the delta writer runs start to end,
    then the whole writer cleans up."""
    _seed(moto_s3, builds)
    v1, v2, v3 = builds(1), builds(2), builds(3)
    DeltaStore(moto_s3.client).put(v3, moto_s3.bucket, KEY)  # an older delta of the key
    racing = Intercept(moto_s3.client)
    delta = racing.after("put_object", lambda _: DeltaStore(moto_s3.client).put(v1, moto_s3.bucket, KEY), Key=KEY)
    assert DeltaStore(racing, StoreConfig(max_ratio=WHOLE)).put(v2, moto_s3.bucket, KEY).kind == "direct"
    assert delta.fired == 1
    # The delta writer saw the whole copy before its PUT and removed it; the whole writer's delete of the old
    # delta failed its precondition, because the key's delta had been replaced meanwhile.
    assert _keys(moto_s3) == ["rel/app-1.0.0.zip.delta", KEY + ".delta", "rel/reference.bin"]
    assert _read(moto_s3, tmp_path) == v1.read_bytes()


def test_overlapping_writers_keep_the_delta(moto_s3: Any, builds: Any, tmp_path: Path) -> None:
    """Both note the other form before either writes: neither may delete the other's write. The delta is the
    object (readers take it); the whole copy stays as wasted space until the key's next put."""
    _seed(moto_s3, builds)
    v1, v2, v3 = builds(1), builds(2), builds(3)
    DeltaStore(moto_s3.client).put(v3, moto_s3.bucket, KEY)  # an older delta, seen by the whole writer
    racing = Intercept(moto_s3.client)
    delta = racing.before("put_object", lambda _: DeltaStore(moto_s3.client).put(v1, moto_s3.bucket, KEY), Key=KEY)
    DeltaStore(racing, StoreConfig(max_ratio=WHOLE)).put(v2, moto_s3.bucket, KEY)
    assert delta.fired == 1
    assert _keys(moto_s3) == ["rel/app-1.0.0.zip.delta", KEY, KEY + ".delta", "rel/reference.bin"]
    assert _read(moto_s3, tmp_path) == v1.read_bytes()
    DeltaStore(moto_s3.client).put(v3, moto_s3.bucket, KEY)  # the next put of the key clears the stale copy
    assert _keys(moto_s3) == ["rel/app-1.0.0.zip.delta", KEY + ".delta", "rel/reference.bin"]
    assert _read(moto_s3, tmp_path) == v3.read_bytes()


def test_sequential_form_switches_leave_one_form(moto_s3: Any, builds: Any, tmp_path: Path) -> None:
    _seed(moto_s3, builds)
    for version, ratio, kind in ((1, None, "delta"), (2, WHOLE, "direct"), (3, None, "delta"), (4, WHOLE, "direct")):
        result = DeltaStore(moto_s3.client, StoreConfig(max_ratio=ratio)).put(builds(version), moto_s3.bucket, KEY)
        assert result.kind == kind
        assert _read(moto_s3, tmp_path) == builds(version).read_bytes()
    assert _keys(moto_s3) == ["rel/app-1.0.0.zip.delta", KEY, "rel/reference.bin"]


def _ignoring_if_match(env: Any) -> Intercept:
    """A client whose conditional DELETEs reach the server without ``If-Match``, as on a server that ignores it."""
    client = Intercept(env.client)
    client.before("delete_object", lambda params: params.pop("IfMatch", None), times=None)
    return client


def test_whole_write_over_a_delta_is_refused_where_deletes_are_not_conditional(moto_s3: Any, builds: Any) -> None:
    _seed(moto_s3, builds)
    DeltaStore(moto_s3.client).put(builds(1), moto_s3.bucket, KEY)
    before = _keys(moto_s3)
    with pytest.raises(StorageError) as err:
        DeltaStore(_ignoring_if_match(moto_s3), StoreConfig(max_ratio=WHOLE)).put(builds(2), moto_s3.bucket, KEY)
    message = str(err.value)
    assert message.startswith(f"s3://{moto_s3.bucket}/{KEY}.delta would have to be deleted")
    assert "ignores conditional deletes" in message and "allow_unconditional_writes=True" in message
    assert "Nothing was written" in message and _keys(moto_s3) == before


def test_accepting_the_risk_switches_forms_without_conditional_deletes(
    moto_s3: Any, builds: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _seed(moto_s3, builds)
    DeltaStore(moto_s3.client).put(builds(1), moto_s3.bucket, KEY)
    store = DeltaStore(_ignoring_if_match(moto_s3), StoreConfig(max_ratio=WHOLE, allow_unconditional_writes=True))
    with caplog.at_level(logging.WARNING, logger="deltaglider_core"):
        assert store.put(builds(2), moto_s3.bucket, KEY).kind == "direct"
    assert "ignores conditional deletes" in caplog.text
    assert _keys(moto_s3) == ["rel/app-1.0.0.zip.delta", KEY, "rel/reference.bin"]
    assert _read(moto_s3, tmp_path) == builds(2).read_bytes()


def test_delta_over_a_whole_copy_leaves_it_where_deletes_are_not_conditional(
    moto_s3: Any, builds: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _seed(moto_s3, builds)
    DeltaStore(moto_s3.client, StoreConfig(max_ratio=WHOLE)).put(builds(1), moto_s3.bucket, KEY)
    with caplog.at_level(logging.WARNING, logger="deltaglider_core"):
        DeltaStore(_ignoring_if_match(moto_s3)).put(builds(2), moto_s3.bucket, KEY)
    assert f"s3://{moto_s3.bucket}/{KEY} is left beside its new delta" in caplog.text
    assert _keys(moto_s3) == ["rel/app-1.0.0.zip.delta", KEY, KEY + ".delta", "rel/reference.bin"]
    assert _read(moto_s3, tmp_path) == builds(2).read_bytes()  # readers take the delta


def test_conditional_delete_probe_runs_once_per_bucket_and_leaves_nothing(moto_s3: Any, builds: Any) -> None:
    _seed(moto_s3, builds)
    client = Intercept(moto_s3.client)
    store = DeltaStore(client, StoreConfig(max_ratio=WHOLE))
    DeltaStore(moto_s3.client).put(builds(1), moto_s3.bucket, KEY)
    DeltaStore(moto_s3.client).put(builds(1), moto_s3.bucket, "rel/other.zip")
    store.put(builds(2), moto_s3.bucket, KEY)
    store.put(builds(2), moto_s3.bucket, "rel/other.zip")
    probes = [p for name, p in client.calls if name == "delete_object" and "IfMatch" in p and "probe" in p["Key"]]
    assert len(probes) == 1
    assert not any(k.startswith(".deltaglider/") for k in _keys(moto_s3))
