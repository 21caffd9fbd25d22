"""Writers racing deletes and other writers, with the interleaving forced (tests/interleave.py), not hoped for."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path
from typing import Any

import pytest
from deltaglider_core import DeltaStore, StoreConfig

from tests.interleave import Intercept


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _body(env: Any, key: str) -> bytes:
    return bytes(env.client.get_object(Bucket=env.bucket, Key=key)["Body"].read())


def test_reference_deleted_right_after_the_delta_write_is_restored(moto_s3: Any, builds: Any, tmp_path: Path) -> None:
    """A concurrent delete removes reference.bin between the writer's delta PUT and its reference check."""
    v0, v1 = builds(0), builds(1)
    DeltaStore(moto_s3.client).put(v0, moto_s3.bucket, "rel/app-1.0.0.zip")
    racing = Intercept(moto_s3.client)
    racing.after(
        "put_object",
        lambda _: moto_s3.client.delete_object(Bucket=moto_s3.bucket, Key="rel/reference.bin"),
        Key="rel/app-1.0.1.zip.delta",
    )
    result = DeltaStore(racing).put(v1, moto_s3.bucket, "rel/app-1.0.1.zip")
    assert result.kind == "delta" and racing.hooks[0].fired == 1
    assert _body(moto_s3, "rel/reference.bin") == v0.read_bytes()
    reader = DeltaStore(moto_s3.client)  # a fresh cache: everything comes from S3
    for key, original in (("rel/app-1.0.0.zip", v0), ("rel/app-1.0.1.zip", v1)):
        got = reader.get(moto_s3.bucket, key, tmp_path / original.name)
        assert got.sha256 == _sha(original) and Path(got.path).read_bytes() == original.read_bytes()


def _restore_meets_a_new_first_upload(moto_s3: Any, builds: Any) -> tuple[DeltaStore, Path, Path, Path]:
    """Writer B's reference vanishes after its delta PUT; writer C then starts the prefix afresh with another
    file, exactly before B puts the old reference back."""
    v0, v1 = builds(0), builds(1)
    other = builds(0, seed=7, name="other")
    DeltaStore(moto_s3.client).put(v0, moto_s3.bucket, "rel/app-1.0.0.zip")
    moto_s3.client.delete_object(Bucket=moto_s3.bucket, Key="rel/app-1.0.0.zip.delta")  # only the reference left
    newcomer = DeltaStore(moto_s3.client)
    racing = Intercept(moto_s3.client)
    racing.after(
        "put_object",
        lambda _: moto_s3.client.delete_object(Bucket=moto_s3.bucket, Key="rel/reference.bin"),
        Key="rel/app-1.0.1.zip.delta",
    )
    racing.before(
        "put_object", lambda _: newcomer.put(other, moto_s3.bucket, "rel/other-1.0.0.zip"), Key="rel/reference.bin"
    )
    writer = DeltaStore(racing)
    writer.put(v1, moto_s3.bucket, "rel/app-1.0.1.zip")
    assert [h.fired for h in racing.hooks] == [1, 1]
    return writer, v1, other, builds(0)


def test_restoring_a_reference_never_overwrites_a_new_one(moto_s3: Any, builds: Any, tmp_path: Path) -> None:
    _, _, other, _ = _restore_meets_a_new_first_upload(moto_s3, builds)
    assert _body(moto_s3, "rel/reference.bin") == other.read_bytes()
    got = DeltaStore(moto_s3.client).get(moto_s3.bucket, "rel/other-1.0.0.zip", tmp_path / "o.zip")
    assert Path(got.path).read_bytes() == other.read_bytes()


def test_losing_restore_does_not_lose_the_acknowledged_write(moto_s3: Any, builds: Any, tmp_path: Path) -> None:
    """The writer whose reference was re-created with other bytes encodes again against the new one."""
    _, v1, _, _ = _restore_meets_a_new_first_upload(moto_s3, builds)
    got = DeltaStore(moto_s3.client).get(moto_s3.bucket, "rel/app-1.0.1.zip", tmp_path / "v1.zip")
    assert Path(got.path).read_bytes() == v1.read_bytes()


def _ignoring_conditions(env: Any) -> Intercept:
    """A client whose conditional PUTs reach the server without ``If-None-Match``: what a server or gateway
    that ignores the header does with them."""
    client = Intercept(env.client)
    client.before("put_object", lambda params: params.pop("IfNoneMatch", None), times=None)
    client.before("complete_multipart_upload", lambda params: params.pop("IfNoneMatch", None), times=None)
    return client


def test_server_that_ignores_conditional_writes_is_refused_clearly(moto_s3: Any, builds: Any) -> None:
    from deltaglider_core.errors import StorageError

    store = DeltaStore(_ignoring_conditions(moto_s3))
    with pytest.raises(StorageError) as err:
        store.put(builds(0), moto_s3.bucket, "rel/app-1.0.0.zip")
    message = str(err.value)
    assert message.startswith(f"s3://{moto_s3.bucket} ignores conditional writes")
    assert "Nothing was written" in message and "allow_unconditional_writes=True" in message
    listed = moto_s3.client.list_objects_v2(Bucket=moto_s3.bucket).get("Contents", [])
    assert listed == []  # no reference, no delta, no probe left behind


def test_accepting_the_risk_writes_and_the_probe_runs_once(moto_s3: Any, builds: Any, tmp_path: Path) -> None:
    client = _ignoring_conditions(moto_s3)
    store = DeltaStore(client, StoreConfig(allow_unconditional_writes=True))
    for v in range(3):
        store.put(builds(v), moto_s3.bucket, f"rel/app-1.0.{v}.zip")
    probes = [p for name, p in client.calls if name == "put_object" and p["Key"].startswith(".deltaglider/probe/")]
    assert len(probes) == 2  # two PUTs on one scratch key, once for the bucket
    got = DeltaStore(moto_s3.client).get(moto_s3.bucket, "rel/app-1.0.2.zip", tmp_path / "o.zip")
    assert got.sha256 == _sha(builds(2))
    keys = [o["Key"] for o in moto_s3.client.list_objects_v2(Bucket=moto_s3.bucket)["Contents"]]
    assert not any(k.startswith(".deltaglider/") for k in keys)


def test_honouring_server_is_probed_once_and_left_clean(moto_s3: Any, builds: Any) -> None:
    client = Intercept(moto_s3.client)
    store = DeltaStore(client)
    store.put(builds(0), moto_s3.bucket, "a/app-1.0.0.zip")
    store.put(builds(0), moto_s3.bucket, "b/app-1.0.0.zip")  # a second new prefix: no second probe
    probes = [p for name, p in client.calls if name == "put_object" and p["Key"].startswith(".deltaglider/probe/")]
    assert len(probes) == 2 and all(p["IfNoneMatch"] == "*" for p in probes)
    keys = [o["Key"] for o in moto_s3.client.list_objects_v2(Bucket=moto_s3.bucket)["Contents"]]
    assert sorted(keys) == ["a/app-1.0.0.zip.delta", "a/reference.bin", "b/app-1.0.0.zip.delta", "b/reference.bin"]


class _WatchedLock:
    """A lock that says when a second thread is waiting for it."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.waiting = threading.Event()

    def __enter__(self) -> None:
        if self.lock.locked():
            self.waiting.set()
        self.lock.acquire()

    def __exit__(self, *exc: object) -> None:
        self.lock.release()


def test_threads_starting_together_share_one_probe(moto_s3: Any) -> None:
    """Two threads of one store reach a new bucket at once (a migration's first two deltaspaces): the second
    waits for the first one's probe instead of probing too (forced: it is at the lock while the first probes)."""
    client = Intercept(moto_s3.client)
    store = DeltaStore(client)
    watched = _WatchedLock()
    store.s3._probe_lock = watched  # type: ignore[assignment]
    answers: list[bool] = []
    second = threading.Thread(
        target=lambda: answers.append(store.s3.honours_if_none_match(moto_s3.bucket, ".deltaglider/probe/b"))
    )

    def start_second_and_wait_for_it(_: dict[str, Any]) -> None:
        second.start()
        assert watched.waiting.wait(10), "the second thread never waited for the probe"

    client.before("put_object", start_second_and_wait_for_it, Key=".deltaglider/probe/a")
    answers.append(store.s3.honours_if_none_match(moto_s3.bucket, ".deltaglider/probe/a"))
    second.join(10)
    assert answers == [True, True]
    probes = [p["Key"] for name, p in client.calls if name == "put_object"]
    assert probes == [".deltaglider/probe/a", ".deltaglider/probe/a"]  # one probe (two PUTs), none for b
    assert "Contents" not in moto_s3.client.list_objects_v2(Bucket=moto_s3.bucket)  # and it left nothing


def test_prune_racing_a_writer_loses_nothing(moto_s3: Any, builds: Any, tmp_path: Path) -> None:
    """The interleaving that loses data when a delete removes references inline: prune lists (no delta names
    the reference), a writer stores a delta against it and checks it exists, then prune removes it. The delta
    still reads (from the trash) and the next prune puts the reference back."""
    import datetime as dt

    v0, v1 = builds(0), builds(1)
    seed = DeltaStore(moto_s3.client)
    seed.put(v0, moto_s3.bucket, "rel/app-1.0.0.zip")
    seed.delete(moto_s3.bucket, "rel/app-1.0.0.zip")  # the reference is now unnamed: a prune candidate
    writer = DeltaStore(moto_s3.client)
    pruning = Intercept(moto_s3.client)
    acknowledged = []
    pruning.before(
        "delete_object",
        lambda _: acknowledged.append(writer.put(v1, moto_s3.bucket, "rel/app-1.0.1.zip")),
        Key="rel/reference.bin",
    )
    report = DeltaStore(pruning).prune(moto_s3.bucket, grace=dt.timedelta(0))
    assert report.trashed == ("rel/reference.bin",) and acknowledged[0].kind == "delta"
    keys = sorted(o["Key"] for o in moto_s3.client.list_objects_v2(Bucket=moto_s3.bucket)["Contents"])
    assert keys == [".deltaglider/trash/rel/reference.bin", "rel/app-1.0.1.zip.delta"]  # the race happened
    got = DeltaStore(moto_s3.client).get(moto_s3.bucket, "rel/app-1.0.1.zip", tmp_path / "a.zip")
    assert Path(got.path).read_bytes() == v1.read_bytes()  # read through the trash copy
    finish = DeltaStore(moto_s3.client).prune(moto_s3.bucket, grace=dt.timedelta(0))
    assert finish.restored == ("rel/reference.bin",) and finish.purged == ()
    keys = sorted(o["Key"] for o in moto_s3.client.list_objects_v2(Bucket=moto_s3.bucket)["Contents"])
    assert keys == ["rel/app-1.0.1.zip.delta", "rel/reference.bin"]
    again = DeltaStore(moto_s3.client).get(moto_s3.bucket, "rel/app-1.0.1.zip", tmp_path / "b.zip")
    assert Path(again.path).read_bytes() == v1.read_bytes()


def test_delete_racing_a_writer_in_the_issues_interleaving(moto_s3: Any, builds: Any, tmp_path: Path) -> None:
    """Issue #12's first case: delete's listing sees no delta needing the reference, and a writer that already
    checked the reference stores a delta against it. delete() no longer removes references, so it reads."""
    v0, v1 = builds(0), builds(1)
    DeltaStore(moto_s3.client).put(v0, moto_s3.bucket, "rel/app-1.0.0.zip")
    writer = DeltaStore(moto_s3.client)
    deleting = Intercept(moto_s3.client)
    deleting.after(
        "delete_object", lambda _: writer.put(v1, moto_s3.bucket, "rel/app-1.0.1.zip"), Key="rel/app-1.0.0.zip.delta"
    )
    DeltaStore(deleting).delete(moto_s3.bucket, "rel/app-1.0.0.zip")
    got = DeltaStore(moto_s3.client).get(moto_s3.bucket, "rel/app-1.0.1.zip", tmp_path / "o.zip")
    assert Path(got.path).read_bytes() == v1.read_bytes()


def test_a_put_that_gives_up_leaves_the_keys_whole_copy_readable(
    moto_s3: Any, builds: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """#28, finding 13: the reference is replaced under every attempt (forced), so the put gives up. The key's
    earlier whole copy must still read back: it is dropped only after the delta is known to decode, and the
    last attempt's delta, which names bytes that are gone, is taken back."""
    from deltaglider_core import StorageError

    store = DeltaStore(moto_s3.client)
    store.put(builds(0), moto_s3.bucket, "rel/app-1.0.0.zip")
    old = builds(5).read_bytes()
    moto_s3.client.put_object(
        Bucket=moto_s3.bucket, Key="rel/app-1.0.1.zip", Body=old,
        Metadata={"dg-file-sha256": hashlib.sha256(old).hexdigest(), "dg-file-size": str(len(old))},
    )  # fmt: skip
    monkeypatch.setattr(store.refs, "restore", lambda *args: "replaced")
    with pytest.raises(StorageError, match="kept being replaced"):
        store.put(builds(1), moto_s3.bucket, "rel/app-1.0.1.zip")
    keys = {o["Key"] for o in moto_s3.client.list_objects_v2(Bucket=moto_s3.bucket)["Contents"]}
    assert "rel/app-1.0.1.zip" in keys and "rel/app-1.0.1.zip.delta" not in keys
    got = DeltaStore(moto_s3.client).get(moto_s3.bucket, "rel/app-1.0.1.zip", tmp_path / "back.zip")
    assert got.verified and (tmp_path / "back.zip").read_bytes() == old
