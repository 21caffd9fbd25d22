"""Upload correctness: no silent overwrite between files, no symlink escape, idempotent re-runs, replace."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from deltaglider_core import DeltaStore

from airflow_provider_deltaglider.operators.upload import DeltaGliderUploadOperator
from tests.airflow_runs import run_dag

START = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)


@pytest.fixture
def conn(moto_conn: str) -> str:
    return moto_conn


def _keys(env: Any, prefix: str) -> dict[str, str]:
    listed = env.client.list_objects_v2(Bucket=env.bucket, Prefix=prefix).get("Contents", [])
    return {o["Key"]: o["ETag"] for o in listed}


def _tree(root: Path) -> None:
    for rel, text in {"linux/tool.txt": "linux build", "windows/tool.txt": "windows build!", "notes.txt": "n"}.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)


def test_same_name_in_two_folders_fails_or_keeps_paths(moto_s3: Any, conn: str, tmp_path: Path) -> None:
    from airflow.sdk import DAG

    src = tmp_path / "dist"
    _tree(src)
    b = moto_s3.bucket
    with DAG("up_collide", schedule=None, start_date=START) as dag:
        DeltaGliderUploadOperator(
            task_id="flat", source=f"{src}/**/*.txt", dest=f"s3://{b}/flat/", deltaglider_conn_id=conn
        )
        DeltaGliderUploadOperator(
            task_id="kept", source=f"{src}/**/*.txt", dest=f"s3://{b}/kept/", keep_paths=True, deltaglider_conn_id=conn
        )
    result = run_dag(dag)
    assert result.states == {"flat": "failed", "kept": "success"}
    message = result.error("flat")
    assert "1 key name(s) would be written by more than one file" in message
    assert f"'tool.txt' from {src}/linux/tool.txt, {src}/windows/tool.txt" in message
    assert "set keep_paths=True" in message
    assert _keys(moto_s3, "flat/") == {}  # nothing was sent
    assert result.xcoms["kept"]["count"] == 3
    store = DeltaStore(moto_s3.client)
    for rel in ("linux/tool.txt", "windows/tool.txt", "notes.txt"):
        got = store.get(b, f"kept/{rel}", tmp_path / "o.txt")
        assert Path(got.path).read_text() == (src / rel).read_text()


def test_glob_does_not_follow_a_symlink_out_of_its_root(moto_s3: Any, conn: str, tmp_path: Path) -> None:
    from airflow.sdk import DAG

    src = tmp_path / "dist"
    src.mkdir()
    (src / "app.txt").write_text("mine")
    secret = tmp_path / "secret.txt"
    secret.write_text("not for upload")
    (src / "leak.txt").symlink_to(secret)
    (src / "alias.txt").symlink_to(src / "app.txt")  # inside the root: fine
    with DAG("up_symlink", schedule=None, start_date=START) as dag:
        DeltaGliderUploadOperator(
            task_id="up", source=f"{src}/*.txt", dest=f"s3://{moto_s3.bucket}/rel/", deltaglider_conn_id=conn
        )
    result = run_dag(dag)
    assert result.states == {"up": "success"}
    assert sorted(_keys(moto_s3, "rel/")) == ["rel/alias.txt", "rel/app.txt"]


def test_rerun_of_identical_files_sends_nothing_and_replace(
    moto_s3: Any, conn: str, builds: Any, tmp_path: Path
) -> None:
    from airflow.sdk import DAG

    src = tmp_path / "dist"
    src.mkdir()
    for v in (0, 1):
        (src / builds(v).name).write_bytes(builds(v).read_bytes())
    b = moto_s3.bucket

    def upload(dag_id: str, **kwargs: Any) -> Any:
        with DAG(dag_id, schedule=None, start_date=START) as dag:
            DeltaGliderUploadOperator(
                task_id="up", source=f"{src}/*.zip", dest=f"s3://{b}/rel/", deltaglider_conn_id=conn, **kwargs
            )
        return run_dag(dag)

    assert upload("up_first").xcoms["up"]["count"] == 2
    before = _keys(moto_s3, "rel/")
    again = upload("up_again")
    assert again.states == {"up": "success"}
    assert (again.xcoms["up"]["count"], again.xcoms["up"]["unchanged"]) == (
        0,
        [f"rel/{p.name}" for p in sorted(src.iterdir())],
    )
    assert _keys(moto_s3, "rel/") == before  # not one object rewritten
    changed = src / builds(1).name
    changed.write_bytes(builds(2).read_bytes())  # same name, other bytes
    refused = upload("up_refused")
    assert refused.states == {"up": "failed"} and refused.tries["up"] == 1
    assert refused.error("up").startswith(f"1 key(s) already hold different content: s3://{b}/rel/{changed.name}.")
    assert _keys(moto_s3, "rel/") == before
    replaced = upload("up_replace", replace=True)
    assert replaced.states == {"up": "success"} and replaced.xcoms["up"]["count"] == 1
    got = DeltaStore(moto_s3.client).get(b, f"rel/{changed.name}", tmp_path / "o.zip")
    assert Path(got.path).read_bytes() == changed.read_bytes()
