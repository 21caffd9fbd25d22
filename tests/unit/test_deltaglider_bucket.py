"""A prefix exactly as DeltaGlider 6.2.0 (on Debian's xdelta3, LZMA-secondary deltas) wrote it, read back here.

tests/fixtures/deltaglider-6.2.0 holds every object's body and user metadata as the peer stored them
(``python -m devtools.fixtures``); each test loads them into moto and reads through a public path: the
store, the download operator, sync down and stats.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from deltaglider_core import DeltaStore
from deltaglider_core.ops.stats import compute_stats
from deltaglider_core.ops.sync import sync_down

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "deltaglider-6.2.0"
MANIFEST = json.loads((FIXTURES / "manifest.json").read_text())
ORIGINALS: dict[str, dict[str, Any]] = MANIFEST["originals"]


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def dg_bucket(moto_s3: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setattr(shutil, "which", lambda *_: None)  # no xdelta3 binary: the wheel alone must read it
    for key, obj in MANIFEST["objects"].items():
        body = (FIXTURES / "objects" / obj["file"]).read_bytes()
        moto_s3.client.put_object(Bucket=moto_s3.bucket, Key=key, Body=body, Metadata=obj["metadata"])
    return moto_s3


def test_fixture_holds_lzma_secondary_deltas() -> None:
    from deltaglider_core.codec.vcdiff import secondary_compressor

    deltas = [o["file"] for k, o in MANIFEST["objects"].items() if k.endswith(".delta")]
    assert len(deltas) == 4
    assert {secondary_compressor(FIXTURES / "objects" / f) for f in deltas} == {"lzma"}
    assert MANIFEST["objects"]["releases/app/app-1.0.1.zip.delta"]["metadata"]["dg-tool"] == "deltaglider/6.2.0"


def test_store_reads_every_object_byte_identically(dg_bucket: Any, tmp_path: Path) -> None:
    store = DeltaStore(dg_bucket.client)
    listed = {o.key: o for o in store.list(dg_bucket.bucket, "releases/")}
    assert sorted(listed) == sorted(ORIGINALS)
    for key, original in ORIGINALS.items():
        got = store.get(dg_bucket.bucket, key, tmp_path / key.rpartition("/")[2])
        assert got.verified and got.sha256 == original["sha256"] == _sha(Path(got.path))
        assert listed[key].original_size == original["size"]
    assert listed["releases/app/app-1.0.2.zip"].kind == "delta"


def test_download_operator_and_sync_down(dg_bucket: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.sdk import DAG

    from airflow_provider_deltaglider.operators.download import DeltaGliderDownloadOperator
    from tests.airflow_runs import conn_env, run_dag

    name, value = conn_env("dg_fixture", dg_bucket)
    monkeypatch.setenv(name, value)
    with DAG("dg_fixture_download", schedule=None, start_date=dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)) as dag:
        DeltaGliderDownloadOperator(
            task_id="download", source=f"s3://{dg_bucket.bucket}/releases/app/", dest=str(tmp_path / "dl"),
            deltaglider_conn_id="dg_fixture",
        )  # fmt: skip
    result = run_dag(dag)
    assert result.states == {"download": "success"}
    assert result.xcoms["download"]["count"] == len(ORIGINALS)
    report = sync_down(DeltaStore(dg_bucket.client), dg_bucket.bucket, "releases/", tmp_path / "mirror")
    assert len(report.transferred) == len(ORIGINALS) and report.refused == ()
    for key, original in ORIGINALS.items():
        name = key.rpartition("/")[2]
        assert _sha(tmp_path / "dl" / name) == original["sha256"]
        assert _sha(tmp_path / "mirror" / "app" / name) == original["sha256"]


def test_stats_count_logical_objects(dg_bucket: Any) -> None:
    stats = compute_stats(DeltaStore(dg_bucket.client), dg_bucket.bucket, "releases/")
    assert (stats.objects, stats.deltas, stats.references) == (len(ORIGINALS), 4, 1)
    assert stats.original_bytes == sum(o["size"] for o in ORIGINALS.values())
    stored = sum((FIXTURES / "objects" / o["file"]).stat().st_size for o in MANIFEST["objects"].values())
    assert stats.stored_bytes == stored and stats.orphaned_references == ()


def test_stats_progress_counts_what_the_table_shows(dg_bucket: Any) -> None:
    """The progress line counts logical objects and stored bytes, like the table (not raw keys and 0 B)."""
    from deltaglider_core.support.progress import Progress

    class Lines:
        def __init__(self) -> None:
            self.lines: list[str] = []

        def info(self, message: str, *args: Any) -> None:
            self.lines.append(message % args if args else message)

    log = Lines()
    progress = Progress("stats", 0, None, log)
    stats = compute_stats(DeltaStore(dg_bucket.client), dg_bucket.bucket, "releases/", on_page=progress.advance)
    progress.finish()
    assert (progress.done_objects, progress.done_bytes) == (stats.objects, stats.stored_bytes)
    assert log.lines[-1].startswith(f"stats: {stats.objects} objects, ")
