"""Large artifacts within the memory budget, measured on a real SeaweedFS in a process of their own
(devtools/memprobe.py): peak RSS (VmHWM, counted from after the artifact was generated) of put reference,
put delta and get. Not timed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def _probe(seaweed_s3: Any, tmp_path: Path, size_mb: int, budget_mb: int | None) -> dict[str, Any]:
    env = {
        "AWS_ENDPOINT_URL": seaweed_s3.endpoint_url,
        "AWS_ACCESS_KEY_ID": seaweed_s3.access_key,
        "AWS_SECRET_ACCESS_KEY": seaweed_s3.secret_key,
        "PATH": "/usr/bin:/bin",
        "TMPDIR": str(tmp_path),
    }
    args = [sys.executable, "-m", "devtools.memprobe", "--size-mb", str(size_mb), "--bucket", seaweed_s3.bucket]
    args += ["--workdir", str(tmp_path)] + ([] if budget_mb is None else ["--budget-mb", str(budget_mb)])
    done = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    report: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["kinds"] == ["reference", "delta"] and report["identical"] is True
    assert report["stored"][1] < (size_mb << 20) // 1000  # a small delta, not a whole copy
    return report


def test_one_gib_round_trips_within_a_256_mb_budget(seaweed_s3: Any, tmp_path: Path) -> None:
    report = _probe(seaweed_s3, tmp_path, 1024, 256)
    above_interpreter = (report["peak_kb"] - report["baseline_kb"]) << 10
    assert above_interpreter < 256 << 20, json.dumps(report)


def test_default_budget_keeps_a_1_2_gb_artifact_under_1_25_gb(seaweed_s3: Any, tmp_path: Path) -> None:
    report = _probe(seaweed_s3, tmp_path, 1229, None)
    assert report["peak_kb"] << 10 < 1250 << 20, report
