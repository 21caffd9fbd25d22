"""Every ```python block in README.md and docs/*.md runs (on moto, in a temp directory), so samples cannot rot.

A sample that builds operators is not only constructed: its DAG (or, for loose operators, a DAG made
around them) runs through ``dag.test()`` against moto, with the sample's absolute local paths (``/builds``,
``/build``, ``/reports``) mapped into the test's temp directory and the buckets it names pre-filled, and
every task must succeed with something to show for it.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import pytest

from tests.airflow_runs import conn_env, run_dag

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)
SAMPLES = [(doc, i, code) for doc in DOCS for i, code in enumerate(BLOCK.findall(doc.read_text()))]
LOGICAL_DATE = dt.datetime(2026, 1, 2, tzinfo=dt.timezone.utc)
LOCAL_ROOTS = ("/builds/", "/build/", "/reports/")


def test_docs_have_samples() -> None:
    assert len(SAMPLES) >= 8
    assert {d.name for d, _, _ in SAMPLES} >= {"README.md", "quickstart.md", "operators.md", "sensors.md"}


def _fixtures(tmp_path: Path, moto_s3: Any, builds: Any) -> None:
    """Local files and buckets the samples name."""
    client = moto_s3.client
    for bucket in ("artifacts", "legacy"):
        client.create_bucket(Bucket=bucket)
    archives = [builds(0), builds(1)]
    for folder in (tmp_path, tmp_path / "builds", tmp_path / "builds" / LOGICAL_DATE.strftime("%Y-%m-%d")):
        folder.mkdir(parents=True, exist_ok=True)
        for version, archive in enumerate(archives):
            (folder / f"app-1.0.{version}.zip").write_bytes(archive.read_bytes())
    dist = tmp_path / "build" / "dist"
    dist.mkdir(parents=True)
    (dist / "mypkg-1.0-py3-none-any.whl").write_bytes(archives[0].read_bytes())
    (dist / "mypkg-1.0.tar.gz").write_bytes(archives[1].read_bytes())
    (dist / "build.log").write_text("excluded by the sync sample")
    from deltaglider_core import DeltaStore

    store = DeltaStore(client)
    store.put(archives[1], "artifacts", "nightly/app/app-2.0.0.zip")  # README's sensor waits for > 1.9
    store.put(archives[1], "artifacts", "releases/app/app-1.1.zip")  # sensors.md waits for a new release
    for version, archive in enumerate(archives):
        client.put_object(Bucket="legacy", Key=f"releases/app-1.{version}.zip", Body=archive.read_bytes())


def _localised(code: str, tmp_path: Path) -> str:
    for root in LOCAL_ROOTS:
        code = code.replace(f'"{root}', f'"{tmp_path}{root}')
    return code


def _dags(namespace: dict[str, Any]) -> list[tuple[Any, dt.datetime]]:
    """The sample's DAGs (run at the fixed logical date their ``{{ ds }}`` paths expect), plus one DAG around
    any operator it built outside a DAG (run now: a sensor sample looks at the last hour's releases)."""
    from airflow.sdk import DAG, BaseOperator

    dags = [(v, LOGICAL_DATE) for v in namespace.values() if isinstance(v, DAG)]
    loose = [v for v in namespace.values() if isinstance(v, BaseOperator) and not v.has_dag()]
    if loose:
        with DAG(f"sample_{id(namespace)}", schedule=None, start_date=LOGICAL_DATE) as wrapper:
            for op in loose:
                wrapper.add_task(op)
        dags.append((wrapper, dt.datetime.now(dt.timezone.utc)))
    return dags


@pytest.mark.parametrize(("doc", "index", "code"), SAMPLES, ids=[f"{d.name}#{i}" for d, i, _ in SAMPLES])
def test_sample_runs(
    doc: Path,
    index: int,
    code: str,
    moto_s3: Any,
    builds: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _fixtures(tmp_path, moto_s3, builds)
    for conn_id in ("deltaglider_default", "aws_default"):
        name, value = conn_env(conn_id, moto_s3)
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, Any] = {"__name__": f"doc_sample_{index}"}
    exec(compile(_localised(code, tmp_path), f"{doc.name}#{index}", "exec"), namespace)
    for dag, logical_date in _dags(namespace):
        result = run_dag(dag, logical_date=logical_date)
        assert result.states and set(result.states.values()) == {"success"}, (doc.name, index, result.states)
        for task, xcom in result.xcoms.items():
            if isinstance(xcom, dict):
                done = xcom.get("count", xcom.get("transferred_count", xcom.get("objects", 1)))
                assert done, (doc.name, index, task, xcom)
        migrated = [x["migrated"] for x in result.xcoms.values() if isinstance(x, dict) and "migrated" in x]
        assert not migrated or sum(migrated) > 0, (doc.name, index, result.xcoms)  # shards together moved it all
