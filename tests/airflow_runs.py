"""Run DAGs the way Airflow does (``dag.test()`` against a migrated SQLite metadata DB) and read back
task states and XComs."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_MIGRATED: set[str] = set()


def migrate_db() -> None:
    """``airflow db migrate`` once per AIRFLOW_HOME (SQLite, ~4 s)."""
    home = os.environ["AIRFLOW_HOME"]
    if home in _MIGRATED:
        return
    airflow = Path(sys.executable).parent / "airflow"
    subprocess.run([str(airflow), "db", "migrate"], check=True, capture_output=True)
    _MIGRATED.add(home)


@dataclass
class DagResult:
    state: str
    states: dict[str, str]
    xcoms: dict[str, Any]
    errors: dict[str, str]  # task id -> the message of the exception it failed with
    tries: dict[str, int]  # task id -> attempts made

    def error(self, task_id: str) -> str:
        return self.errors.get(task_id, "")


@contextlib.contextmanager
def _recording_failures(errors: dict[str, str]) -> Iterator[None]:
    """Note the exception each task ends with: dag.test runs tasks in-process and hands every outcome to
    the task runner's ``finalize`` (looked up at call time on Airflow 3.0 through 3.3), so wrapping it sees
    the real exception, where a failure callback's context lacks it on Airflow 3.0."""
    from airflow.sdk.execution_time import task_runner

    original = task_runner.finalize

    def finalize(ti: Any, state: Any, context: Any, log: Any, error: BaseException | None = None) -> Any:
        if error is not None:
            index = getattr(ti, "map_index", -1)
            errors[ti.task_id if index is None or index < 0 else f"{ti.task_id}[{index}]"] = str(error)
        return original(ti, state, context, log, error)

    task_runner.finalize = finalize
    try:
        yield
    finally:
        task_runner.finalize = original


def run_dag(dag: Any, logical_date: Any = None) -> DagResult:
    """Serialize ``dag`` into the metadata DB, run ``dag.test()``, return states and return values."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    errors: dict[str, str] = {}
    store_dag(dag)
    with _recording_failures(errors):
        run = dag.test(logical_date=logical_date) if logical_date is not None else dag.test()
    with create_session() as session:
        tis = session.query(TaskInstance).filter_by(dag_id=dag.dag_id, run_id=run.run_id).all()
        names = {ti: ti.task_id if ti.map_index < 0 else f"{ti.task_id}[{ti.map_index}]" for ti in tis}
        states = {name: str(ti.state) for ti, name in names.items()}
        tries = {name: int(ti.try_number) for ti, name in names.items()}
        rows = session.query(XComModel).filter_by(dag_id=dag.dag_id, run_id=run.run_id, key="return_value").all()
        xcoms = {r.task_id if r.map_index < 0 else f"{r.task_id}[{r.map_index}]": _value(r.value) for r in rows}
    return DagResult(str(run.state), states, xcoms, errors, tries)


def store_dag(dag: Any) -> None:
    """Serialize ``dag`` into the metadata DB the way the dag processor does (its home moved in Airflow 3.1)."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager

    migrate_db()
    DagBundlesManager().sync_bundles_to_db()
    try:  # Airflow >= 3.1
        from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db
    except ImportError:  # Airflow 3.0
        from airflow.models.dagbag import DagBag

        bag = DagBag(dag_folder=os.devnull, include_examples=False)
        if getattr(dag, "relative_fileloc", None) is None:
            dag.relative_fileloc = os.path.basename(dag.fileloc)  # set by the dag processor for files it parsed
        bag.bag_dag(dag)
        bag.sync_to_db("dags-folder", None)
        return
    bag = DagBag(dag_folder=os.devnull)
    bag.bag_dag(dag)
    sync_bag_to_db(bag, "dags-folder", None)


def _value(raw: Any) -> Any:
    return json.loads(raw) if isinstance(raw, (str, bytes)) else raw


def conn_env(conn_id: str, s3: Any, **extra: Any) -> tuple[str, str]:
    """(env var name, value) of an ``AIRFLOW_CONN_*`` for a test S3 server (moto if no endpoint)."""
    fields: dict[str, Any] = {"region_name": "us-east-1", **extra}
    if s3.endpoint_url:
        fields["endpoint_url"] = s3.endpoint_url
    payload = {"conn_type": "deltaglider", "login": s3.access_key, "password": s3.secret_key, "extra": fields}
    return f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(payload)


def asset_events(name: str) -> list[dict[str, Any]]:
    """Extras of the asset events recorded for the asset named ``name`` (oldest first).

    Airflow normalises an asset's URI (``s3://b/p/`` becomes ``s3://b/p``); its name stays as given.
    """
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = (
            session.query(AssetEvent)
            .join(AssetModel, AssetModel.id == AssetEvent.asset_id)
            .filter(AssetModel.name == name)
            .order_by(AssetEvent.id)
            .all()
        )
        return [dict(r.extra) for r in rows]
