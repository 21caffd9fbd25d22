"""The benchmark entry point completes on tiny inputs and writes valid results (the full run is `make bench`)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def test_quick_benchmark_writes_results(tmp_path: Path, stock_xdelta3: str) -> None:
    out = tmp_path / "latest.json"
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--reps", "1", "--rss-mb", "4", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(out.read_text())
    assert results["quick"] is True and results["machine"]["cores"] >= 1
    assert {s["corpus"] for s in results["series"]} == {"nightly", "drifting-large"}
    assert all(s["ours_stored_bytes"] > 0 and s["peer_stored_bytes"] > 0 for s in results["series"])
    assert results["migrate"]["ours_failed"] == 0
    bucket = results["bucket"]
    assert bucket["sensor_releases_found"] == bucket["peer_poke_releases"] == 5  # both tools see the 5 releases
    assert {t["target"] for t in results["targets"]} >= {"download throughput vs DeltaGlider"}
    packed = {c["corpus"]: c for c in results["compressed"]}
    assert {"sdists (Python gzip)", "wheels (zip)"} <= set(packed)
    assert all(c["ours_exact"] == c["files"] == 3 for c in packed.values())  # every version read back exact
    assert packed["wheels (zip)"]["ours_stored_ratio"] < packed["wheels (zip)"]["compat_stored_ratio"]
    cores = results["machine"]["cores"]
    for row in results["scaling"]["rows"]:  # CPU accounted: ours (with codec workers) plus the server's
        assert 0.2 < row["migrate_cores"] <= cores + 0.1 and 0.2 < row["upload_cores"] <= cores + 0.1, row
    assert out.with_suffix(".md").read_text().startswith("Benchmark ")
