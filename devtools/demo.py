"""`make demo`: the nightly-builds example DAG, then the storage report, through real Airflow runs
(`airflow dags test`, SQLite) against an embedded SeaweedFS S3 server on loopback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from devtools.seaweed import SeaweedServer

ROOT = Path(__file__).resolve().parent.parent
BUCKET = "artifacts"
VERSIONS = 8


def _airflow(env: dict[str, str], *args: str) -> None:
    cmd = [str(Path(sys.executable).parent / "airflow"), *args]
    log = Path(env["AIRFLOW_HOME"]) / "demo.log"
    with open(log, "a") as out:
        proc = subprocess.run(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, check=False)
    if proc.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-40:])
        raise SystemExit(f"`airflow {' '.join(args)}` failed ({proc.returncode}); log: {log}\n{tail}")


def main() -> int:
    started = time.monotonic()
    home = Path(tempfile.mkdtemp(prefix="deltaglider-demo-"))
    work = home / "work"
    print(f"AIRFLOW_HOME={home} (SQLite, throwaway)")
    with SeaweedServer() as s3:
        print(f"SeaweedFS S3 on {s3.endpoint_url} (data in {s3.data_dir})")
        s3.client().create_bucket(Bucket=BUCKET)
        conn = {
            "conn_type": "deltaglider",
            "login": s3.access_key,
            "password": s3.secret_key,
            "extra": {"endpoint_url": s3.endpoint_url, "region_name": s3.region},
        }
        env = {
            **os.environ,
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "example_dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
            "AIRFLOW_CONN_DELTAGLIDER_DEFAULT": json.dumps(conn),
            "AWS_EC2_METADATA_DISABLED": "true",  # loopback only: nothing may ask 169.254.169.254
            "DG_DISABLE_EC2_DETECTION": "1",
        }
        _airflow(env, "db", "migrate")
        print(f"running nightly_builds ({VERSIONS} versions of a 1.7 MB zip) ...")
        conf = {"versions": VERSIONS, "workdir": str(work)}
        _airflow(env, "dags", "test", "nightly_builds", "-c", json.dumps(conf))
        print("running storage_report ...")
        report_conf = {"location": f"s3://{BUCKET}/", "report_dir": str(work / "reports")}
        _airflow(env, "dags", "test", "storage_report", "-c", json.dumps(report_conf))
        reports = sorted((work / "reports").glob("storage-*.json"))
        if not reports:
            raise SystemExit("storage_report wrote no report")
        from deltaglider_core.ops.report import render_table
        from deltaglider_core.ops.stats import stats_from_dict

        stats = stats_from_dict(json.loads(reports[-1].read_text()))
        print()
        print(render_table(stats))
        print()
        print(f"HTML report: {reports[-1].with_suffix('.html')}")
    print(f"demo finished in {time.monotonic() - started:.0f}s; Airflow logs in {home}/demo.log")
    return 0


if __name__ == "__main__":
    sys.exit(main())
