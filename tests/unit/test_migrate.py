"""Migration engine on moto: key mapping, shard coverage, resume, per-object failures, dry run."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path
from typing import Any

import pytest
from deltaglider_core import DeltaStore
from deltaglider_core.ops.migrate import Migration, dest_key_for
from deltaglider_core.ops.selection import parse_shard, shard_list
from deltaglider_core.storage.format import Location


def test_dest_key_mapping() -> None:
    assert dest_key_for("a/b/c/k.zip", "a/b/", "x/", True) == "x/b/c/k.zip"
    assert dest_key_for("a/b/c/k.zip", "a/b", "x", False) == "x/c/k.zip"
    assert dest_key_for("k.zip", "", "x/", True) == "x/k.zip"
    assert dest_key_for("a/k.zip", "a/", "", True) == "a/k.zip"


def test_shard_parsing() -> None:
    assert parse_shard("3/16") == (3, 16)
    assert parse_shard(None, 2, 4) == (2, 4)
    assert parse_shard() == (0, 1)
    assert shard_list(3) == ["0/3", "1/3", "2/3"]
    for bad in ("16/16", "x/2", "-1/3"):
        with pytest.raises(ValueError, match="Invalid shard"):
            parse_shard(bad)


def _source(env: Any, builds: Any) -> dict[str, bytes]:
    src = env.client
    objects: dict[str, bytes] = {}
    for space in ("app", "lib", "tools/cli"):
        for v in range(3):
            objects[f"src/builds/{space}/{space.replace('/', '-')}-1.0.{v}.zip"] = builds(
                v, name=space.replace("/", "-")
            )
    for i in range(40):
        objects[f"src/builds/logs/run-{i:03d}.log"] = f"log line {i}\n".encode() * (i + 1)
    for key, value in objects.items():
        body = value.read_bytes() if isinstance(value, Path) else value
        objects[key] = body
        src.put_object(Bucket=env.bucket, Key=key, Body=body)
    return objects


@pytest.fixture
def dest_bucket(moto_s3: Any) -> str:
    moto_s3.client.create_bucket(Bucket="dest-bucket-x")
    return "dest-bucket-x"


def _migration(env: Any, dest: str, shard: tuple[int, int] = (0, 1), **kw: Any) -> Migration:
    return Migration(DeltaStore(env.client), None, env.bucket, "src/builds/", dest, "mirror/", shard=shard, **kw)


def test_shards_cover_everything_once_and_keep_deltaspaces_together(
    moto_s3: Any, builds: Any, dest_bucket: str
) -> None:
    objects = _source(moto_s3, builds)
    count = 4
    planned = []
    for index in range(count):
        _, jobs = _migration(moto_s3, dest_bucket, (index, count)).plan()
        planned.append({dest for job in jobs for _, dest in job})
    union = set().union(*planned)
    assert union == {dest_key_for(k, "src/builds/", "mirror/", True) for k in objects}
    assert sum(len(p) for p in planned) == len(union)  # pairwise disjoint
    for shard in planned:
        spaces = {Location("d", k).prefix for k in shard if k.endswith(".zip")}
        for space in spaces:  # every archive of this deltaspace is in this shard
            assert {k for k in union if k.endswith(".zip") and Location("d", k).prefix == space} <= shard


def test_migrate_resume_and_source_untouched(moto_s3: Any, builds: Any, dest_bucket: str, tmp_path: Path) -> None:
    objects = _source(moto_s3, builds)
    before = {o["Key"]: o["ETag"] for o in moto_s3.client.list_objects_v2(Bucket=moto_s3.bucket)["Contents"]}
    dry = _migration(moto_s3, dest_bucket).run(dry_run=True)
    assert dry.selected == len(objects) and dry.migrated == 0 and len(dry.planned) == len(objects)
    assert "Contents" not in moto_s3.client.list_objects_v2(Bucket=dest_bucket)
    first = _migration(moto_s3, dest_bucket, max_workers=4).run()
    assert (first.scanned, first.migrated, first.skipped, first.failed) == (len(objects), len(objects), 0, 0)
    assert first.bytes_in == sum(len(b) for b in objects.values())
    assert first.bytes_stored < first.bytes_in
    again = _migration(moto_s3, dest_bucket).run()
    assert (again.migrated, again.skipped) == (0, len(objects))
    after = {o["Key"]: o["ETag"] for o in moto_s3.client.list_objects_v2(Bucket=moto_s3.bucket)["Contents"]}
    assert after == before
    store = DeltaStore(moto_s3.client)
    listed = [o.key for o in store.list(dest_bucket, "mirror/", with_metadata=False)]
    assert sorted(listed) == sorted(dest_key_for(k, "src/builds/", "mirror/", True) for k in objects)
    for key, body in objects.items():
        res = store.get(dest_bucket, dest_key_for(key, "src/builds/", "mirror/", True), tmp_path / "o")
        assert res.sha256 == hashlib.sha256(body).hexdigest()


def test_changed_source_object_is_migrated_again(moto_s3: Any, builds: Any, dest_bucket: str) -> None:
    _source(moto_s3, builds)
    _migration(moto_s3, dest_bucket).run()
    moto_s3.client.put_object(Bucket=moto_s3.bucket, Key="src/builds/logs/run-001.log", Body=b"rewritten!!")
    report = _migration(moto_s3, dest_bucket).run()
    assert report.migrated == 1


def test_per_object_failures_are_collected_and_retried(
    moto_s3: Any, builds: Any, dest_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.sdk import DAG

    from airflow_provider_deltaglider.operators.migrate import DeltaGliderMigrateOperator
    from tests.airflow_runs import conn_env, run_dag

    objects = _source(moto_s3, builds)
    moto_s3.client.put_object(Bucket=moto_s3.bucket, Key="src/builds/odd/reference.bin", Body=b"not mine")
    moto_s3.client.put_object(Bucket=moto_s3.bucket, Key="src/builds/odd/x.zip.delta", Body=b"nor this")
    name, value = conn_env("dg_mig", moto_s3)
    monkeypatch.setenv(name, value)
    start = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
    with DAG("ops_migrate_fail", schedule=None, start_date=start) as dag:
        DeltaGliderMigrateOperator(
            task_id="migrate", source=f"s3://{moto_s3.bucket}/src/builds/", dest=f"s3://{dest_bucket}/mirror/",
            deltaglider_conn_id="dg_mig",
        )  # fmt: skip
    result = run_dag(dag)
    assert result.states == {"migrate": "failed"}
    b = moto_s3.bucket
    assert (
        f"1 object(s) failed to migrate: src/builds/odd/x.zip.delta: s3://{b}/src/builds/odd/x.zip.delta cannot be "
        f"decoded against s3://{b}/src/builds/odd/reference.bin" in result.error("migrate")
    )
    report = _migration(moto_s3, dest_bucket).run()  # a re-run retries only the failure
    assert (report.migrated, report.skipped, report.failed, report.internal) == (0, len(objects), 1, 1)
    assert [f.key for f in report.failures] == ["src/builds/odd/x.zip.delta"]
    assert report.failure_summary().startswith("1 object(s) failed to migrate: src/builds/odd/x.zip.delta: ")
    copied = [
        o["Key"]
        for o in moto_s3.client.list_objects_v2(Bucket=dest_bucket, Prefix="mirror/builds/odd/").get("Contents", [])
    ]
    assert copied == []  # the foreign reference.bin is never copied as a file


def test_migrating_a_deltaglider_prefix_copies_its_files(
    moto_s3: Any, dest_bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A prefix as DeltaGlider 6.2.0 wrote it (committed fixture, LZMA-secondary deltas): its files land at the
    destination byte-identical under their own names, references are not copied, the source is unchanged, and
    a re-run skips everything."""
    import json
    import shutil

    monkeypatch.setattr(shutil, "which", lambda *_: None)  # pip-only worker: no xdelta3 binary
    fixtures = Path(__file__).resolve().parents[1] / "fixtures" / "deltaglider-6.2.0"
    manifest = json.loads((fixtures / "manifest.json").read_text())
    for key, obj in manifest["objects"].items():
        body = (fixtures / "objects" / obj["file"]).read_bytes()
        moto_s3.client.put_object(Bucket=moto_s3.bucket, Key=key, Body=body, Metadata=obj["metadata"])
    before = {o["Key"]: o["ETag"] for o in moto_s3.client.list_objects_v2(Bucket=moto_s3.bucket)["Contents"]}

    def migration() -> Migration:
        store = DeltaStore(moto_s3.client)
        return Migration(store, None, moto_s3.bucket, "releases/", dest_bucket, "mirror/")

    first = migration().run()
    originals = manifest["originals"]
    assert (first.migrated, first.skipped, first.failed, first.internal) == (len(originals), 0, 0, 1)
    store = DeltaStore(moto_s3.client)
    listed = sorted(o.key for o in store.list(dest_bucket, "mirror/"))
    assert listed == sorted(k.replace("releases/", "mirror/releases/", 1) for k in originals)
    for key, original in originals.items():
        got = store.get(dest_bucket, key.replace("releases/", "mirror/releases/", 1), tmp_path / "f")
        assert got.sha256 == original["sha256"] and got.size == original["size"]
    after = {o["Key"]: o["ETag"] for o in moto_s3.client.list_objects_v2(Bucket=moto_s3.bucket)["Contents"]}
    assert after == before
    again = migration().run()
    assert (again.migrated, again.skipped, again.failed) == (0, len(originals), 0)


def test_a_corrupt_direct_object_is_reported_not_copied(moto_s3: Any, builds: Any, dest_bucket: str) -> None:
    """A plain source object whose bytes differ from its recorded dg-file-sha256 (#28, finding 3): the source
    store's own read refuses it, and so must the migration, instead of stamping the damage with a new hash."""
    import hashlib

    objects = _source(moto_s3, builds)
    key = "src/builds/logs/tampered.log"
    recorded = hashlib.sha256(b"ORIGINAL").hexdigest()
    moto_s3.client.put_object(Bucket=moto_s3.bucket, Key=key, Body=b"TAMPERED", Metadata={"dg-file-sha256": recorded})
    report = _migration(moto_s3, dest_bucket).run()
    assert (report.migrated, report.failed) == (len(objects), 1)
    assert [f.key for f in report.failures] == [key]
    assert f"s3://{moto_s3.bucket}/{key} does not match its recorded SHA-256" in report.failure_summary()
    listed = moto_s3.client.list_objects_v2(Bucket=dest_bucket, Prefix="mirror/builds/logs/tampered")
    assert listed.get("Contents", []) == []
    assert moto_s3.client.get_object(Bucket=moto_s3.bucket, Key=key)["Body"].read() == b"TAMPERED"


def test_a_same_size_rewrite_is_migrated_again(moto_s3: Any, builds: Any, dest_bucket: str) -> None:
    """Resume compares MD5 where both sides have one, not the size alone (#29, outside probe)."""
    _source(moto_s3, builds)
    _migration(moto_s3, dest_bucket).run()
    key = "src/builds/logs/run-001.log"
    before = moto_s3.client.get_object(Bucket=moto_s3.bucket, Key=key)["Body"].read()
    rewritten = bytes(b ^ 1 for b in before)  # same size, other bytes
    moto_s3.client.put_object(Bucket=moto_s3.bucket, Key=key, Body=rewritten)
    report = _migration(moto_s3, dest_bucket).run()
    assert report.migrated == 1
    got = moto_s3.client.get_object(Bucket=dest_bucket, Key="mirror/builds/logs/run-001.log")["Body"].read()
    assert got == rewritten
