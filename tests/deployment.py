"""A real Airflow 3 deployment on loopback, started from the project's own files, for the deployment suite.

api-server, scheduler, dag-processor and triggerer run as separate processes (each in its own process
group, its output in ``<home>/logs/<name>.log``) with the LocalExecutor (``parallelism`` task slots, SQLite
metadata DB: Airflow 3 runs the LocalExecutor on SQLite) and the example DAGs as the DAGs folder. Runs are
started with the ``airflow`` CLI, and what happened is read back from the metadata DB (read-only) and from
the REST API's health endpoint. ``stop()`` ends every process it started (SIGTERM to its group, SIGKILL
after a grace period), also when a test fails; the logs stay in ``home`` (``keep_logs``/``log_tails``).

Written for the tests: Airflow ships ``airflow standalone`` (one foreground process tree, no control over
single components, parallelism or restarts) but no harness that a test can restart pieces of.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
_HEALTH_KEYS = {"scheduler": "scheduler", "triggerer": "triggerer", "dag-processor": "dag_processor"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class TaskRow:
    task_id: str
    map_index: int
    state: str | None
    try_number: int
    start: float | None  # seconds since the epoch
    end: float | None
    pid: int | None
    hostname: str | None

    @property
    def name(self) -> str:
        return self.task_id if self.map_index < 0 else f"{self.task_id}[{self.map_index}]"


@dataclass
class Deployment:
    home: Path
    dags: Path
    env: dict[str, str] = field(default_factory=dict)  # extra environment (connections, example settings)
    parallelism: int = 4
    port: int = 0
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    _logs: dict[str, IO[bytes]] = field(default_factory=dict)

    @property
    def airflow(self) -> str:
        return str(Path(sys.executable).parent / "airflow")

    @property
    def environment(self) -> dict[str, str]:
        home = self.home
        return {
            **os.environ,
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": str(self.parallelism),
            "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": str(self.parallelism * 2),
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{self.port}/execution/",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{self.port}",
            "AIRFLOW__API_AUTH__JWT_SECRET": "deltaglider-deployment-test-secret",
            # Airflow 3.0 leaves the issuer unset (None), which PyJWT >= 2.10 refuses when it signs a token: every
            # API request of the oldest supported Airflow then answers 500. Airflow recommends setting it anyway.
            "AIRFLOW__API_AUTH__JWT_ISSUER": f"http://127.0.0.1:{self.port}",
            "AIRFLOW__API__SECRET_KEY": "deltaglider-deployment-test-secret",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "task-logs"),
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "5",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
            "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "600",
            "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "2",
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
            **self.env,
        }

    # ------------------------------------------------------------------ lifecycle
    def start(self, timeout: float = 180.0) -> Deployment:
        self.home.mkdir(parents=True, exist_ok=True)
        (self.home / "logs").mkdir(exist_ok=True)
        self.port = self.port or free_port()
        self.cli("db", "migrate", timeout=300)
        try:
            for name in COMPONENTS:
                self.start_component(name)
            self.wait_healthy(timeout)
        except BaseException:  # ``with`` never reaches __exit__ when __enter__ fails: stop what did start
            self.stop()
            raise
        return self

    def start_component(self, name: str) -> None:
        args = [self.airflow, name]
        if name == "api-server":
            args += ["--host", "127.0.0.1", "--port", str(self.port), "--workers", "1"]
        log = open(self.home / "logs" / f"{name}.log", "ab")  # noqa: SIM115 - closed by stop()
        log.write(f"\n===== starting {name} at {time.strftime('%H:%M:%S')} =====\n".encode())
        log.flush()
        self._logs[name] = log
        self.processes[name] = subprocess.Popen(
            args, env=self.environment, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def stop_component(self, name: str, grace: float = 30.0) -> None:
        proc = self.processes.pop(name, None)
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
        if proc is not None:  # the group's stragglers (task processes of a LocalExecutor worker)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
        log = self._logs.pop(name, None)
        if log is not None:
            log.close()

    def stop(self) -> None:
        for name in reversed(list(self.processes)):
            self.stop_component(name)

    def __enter__(self) -> Deployment:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ observing
    def health(self) -> dict[str, Any]:
        import urllib3

        with urllib3.PoolManager(retries=False, timeout=5.0) as http:
            reply = http.request("GET", f"http://127.0.0.1:{self.port}/api/v2/monitor/health")
            if reply.status != 200:
                raise RuntimeError(f"health answered {reply.status}")
            return dict(json.loads(reply.data))

    def wait_healthy(self, timeout: float = 180.0) -> None:
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            for name, proc in self.processes.items():
                if proc.poll() is not None:
                    raise RuntimeError(f"airflow {name} exited with {proc.returncode}:\n{self.log_tail(name)}")
            try:
                last = self.health()
                wanted = [_HEALTH_KEYS[n] for n in self.processes if n in _HEALTH_KEYS]
                if all((last.get(k) or {}).get("status") == "healthy" for k in wanted):
                    return
            except Exception as exc:  # noqa: BLE001 - not up yet
                last = exc
            time.sleep(1.0)
        raise TimeoutError(f"the deployment is not healthy after {timeout:.0f} s: {last}\n{self.log_tails()}")

    def cli(self, *args: str, timeout: float = 180.0) -> str:
        proc = subprocess.run(
            [self.airflow, *args], env=self.environment, capture_output=True, text=True, timeout=timeout, check=False
        )
        output = proc.stdout + proc.stderr
        if proc.returncode != 0:
            raise RuntimeError(f"airflow {' '.join(args)} failed ({proc.returncode}):\n{output[-4000:]}")
        return output

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        """Rows of a read-only query on the metadata DB (retried while a writer holds the lock)."""
        for attempt in range(50):
            try:
                with contextlib.closing(
                    sqlite3.connect(f"file:{self.home / 'airflow.db'}?mode=ro", uri=True, timeout=10)
                ) as db:
                    return list(db.execute(sql, params).fetchall())
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or attempt == 49:
                    raise
                time.sleep(0.2)
        raise AssertionError("unreachable")

    def wait_for(self, what: str, check: Callable[[], Any], timeout: float, every: float = 1.0) -> Any:
        """Poll ``check`` until it returns something truthy; fail with ``what`` and the logs' tails."""
        deadline = time.monotonic() + timeout
        while True:
            value = check()
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"{what}: not after {timeout:.0f} s\n{self.log_tails()}")
            time.sleep(every)

    # ------------------------------------------------------------------ DAGs and runs
    def wait_parsed(self, *dag_ids: str, timeout: float = 120.0) -> None:
        marks = ",".join("?" * len(dag_ids))

        def parsed() -> bool:
            rows = self.query(f"SELECT dag_id FROM dag WHERE dag_id IN ({marks})", *dag_ids)
            return len(rows) == len(dag_ids)

        self.wait_for(f"DAGs {dag_ids} parsed", parsed, timeout)

    def unpause(self, *dag_ids: str) -> None:
        for dag_id in dag_ids:
            self.cli("dags", "unpause", dag_id)

    def trigger(self, dag_id: str, run_id: str, conf: dict[str, Any] | None = None) -> str:
        self.cli("dags", "trigger", dag_id, "--run-id", run_id, "--conf", json.dumps(conf or {}))
        return run_id

    def run_state(self, dag_id: str, run_id: str) -> str | None:
        rows = self.query("SELECT state FROM dag_run WHERE dag_id = ? AND run_id = ?", dag_id, run_id)
        return rows[0][0] if rows else None

    def wait_run(self, dag_id: str, run_id: str, timeout: float = 300.0) -> str:
        """The run's final state (success or failed)."""
        state = self.wait_for(
            f"run {dag_id}/{run_id} finished",
            lambda: (s := self.run_state(dag_id, run_id)) in ("success", "failed") and s,
            timeout,
        )
        return str(state)

    def runs(self, dag_id: str) -> list[tuple[str, str, str]]:
        """(run_id, run_type, state) of every run of ``dag_id``, oldest first."""
        rows = self.query("SELECT run_id, run_type, state FROM dag_run WHERE dag_id = ? ORDER BY id", dag_id)
        return [(str(a), str(b), str(c)) for a, b, c in rows]

    def tasks(self, dag_id: str, run_id: str) -> dict[str, TaskRow]:
        rows = self.query(
            "SELECT task_id, map_index, state, try_number, "
            "CAST(strftime('%s', start_date) AS REAL) + (CAST(substr(start_date, 21, 6) AS REAL) / 1e6), "
            "CAST(strftime('%s', end_date) AS REAL) + (CAST(substr(end_date, 21, 6) AS REAL) / 1e6), "
            "pid, hostname FROM task_instance WHERE dag_id = ? AND run_id = ?",
            dag_id,
            run_id,
        )
        out = {}
        for task_id, index, state, tries, start, end, pid, host in rows:
            row = TaskRow(str(task_id), int(index), state, int(tries or 0), start, end, pid, host)
            out[row.name] = row
        return out

    # ------------------------------------------------------------------ diagnosis
    def log_tail(self, name: str, lines: int = 60) -> str:
        path = self.home / "logs" / f"{name}.log"
        if not path.exists():
            return ""
        text = path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def log_tails(self, lines: int = 40) -> str:
        parts = [f"----- {name} (last {lines} lines; full log in {self.home / 'logs'}) -----\n"
                 f"{self.log_tail(name, lines)}" for name in COMPONENTS]  # fmt: skip
        return "\n".join(parts)
