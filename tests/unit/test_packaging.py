"""deltaglider_core stays Airflow-free; importing the provider does no work (DAG files are parsed constantly)."""

from __future__ import annotations

import subprocess
import sys

CORE_MODULES = [
    "deltaglider_core", "deltaglider_core.store", "deltaglider_core.stats", "deltaglider_core.sync",
    "deltaglider_core.migrate", "deltaglider_core.releases", "deltaglider_core.ec2", "deltaglider_core.report",
]  # fmt: skip


def _run(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()


def test_core_imports_without_airflow() -> None:
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'airflow' or name.startswith('airflow.'):\n"
        "            raise ImportError('airflow is blocked in this test')\n"
        "sys.meta_path.insert(0, Block())\n"
        f"import {', '.join(CORE_MODULES)}\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'airflow'))\n"
    )
    assert _run(code) == "[]"


def test_provider_import_makes_no_network_or_s3_calls() -> None:
    code = (
        "import socket\n"
        "def refuse(*a, **k):\n"
        "    raise AssertionError('network at import time')\n"
        "socket.socket.connect = refuse\n"
        "import airflow_provider_deltaglider.operators.upload, airflow_provider_deltaglider.sensors.release\n"
        "import airflow_provider_deltaglider.triggers.release\n"
        "from airflow_provider_deltaglider import get_provider_info\n"
        "print(get_provider_info()['package-name'])\n"
    )
    assert _run(code).splitlines()[-1] == "airflow-provider-deltaglider"
