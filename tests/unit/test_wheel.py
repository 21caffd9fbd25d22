"""The built wheel (not the source tree) installs into this Airflow and every module it declares imports.

Runs in both suites, so on the oldest (3.0.x) and the newest supported Airflow. The wheel is installed into a
private target directory placed first on the path, and each module must be imported from there.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

_CHECK = """
import importlib, json, sys
site = sys.argv[1]
from airflow_provider_deltaglider.provider_info import get_provider_info
info = get_provider_info()
modules = ["deltaglider_core", "deltaglider_core.codec.vcdiff", "airflow_provider_deltaglider.compat"]
for kind in ("hooks", "operators", "sensors", "triggers"):
    for entry in info[kind]:
        modules += entry["python-modules"]
hooks = [c["hook-class-name"] for c in info["connection-types"]]
loaded = {}
for name in modules:
    loaded[name] = importlib.import_module(name).__file__
for path in hooks:
    module, _, cls = path.rpartition(".")
    getattr(importlib.import_module(module), cls)
    loaded[path] = importlib.import_module(module).__file__
import airflow
print(json.dumps({"airflow": airflow.__version__, "loaded": loaded}))
"""


def test_built_wheel_imports_every_declared_module(tmp_path: Path) -> None:
    dist, site = tmp_path / "dist", tmp_path / "site"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "-w", str(dist), str(ROOT)], check=True, capture_output=True)
    wheels = list(dist.glob("airflow_provider_deltaglider-*.whl"))
    assert len(wheels) == 1, wheels
    subprocess.run([*pip, "install", "--no-deps", "--target", str(site), str(wheels[0])], check=True)
    proc = subprocess.run(
        [sys.executable, "-c", _CHECK, str(site)],
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(site), "HOME": str(tmp_path)},
        cwd=tmp_path,  # not the checkout: `python -c` puts the working directory first on sys.path
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    outside = {name: path for name, path in result["loaded"].items() if not path.startswith(str(site))}
    assert outside == {}, f"imported from the source tree, not the wheel: {outside}"
    assert len(result["loaded"]) >= 12
    entry_points = "".join(
        p.read_text() for p in site.glob("airflow_provider_deltaglider-*.dist-info/entry_points.txt")
    )
    assert "provider_info = airflow_provider_deltaglider.provider_info:get_provider_info" in entry_points
