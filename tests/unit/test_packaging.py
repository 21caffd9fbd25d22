"""deltaglider_core stays Airflow-free; importing the provider does no work (DAG files are parsed constantly)."""

from __future__ import annotations

import subprocess
import sys

CORE_MODULES = [
    "deltaglider_core", "deltaglider_core.storage.store", "deltaglider_core.ops.stats", "deltaglider_core.ops.sync",
    "deltaglider_core.ops.migrate", "deltaglider_core.ops.releases", "deltaglider_core.ops.ec2",
    "deltaglider_core.ops.report",
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


def test_declared_dependencies_are_the_ones_the_product_imports() -> None:
    import re
    from pathlib import Path

    import tomllib

    root = Path(__file__).resolve().parents[2]
    declared = tomllib.loads((root / "pyproject.toml").read_text())["project"]["dependencies"]
    names = {re.split(r"[<>=!~ ;\[]", d, maxsplit=1)[0].lower() for d in declared}
    module_of = {"apache-airflow": "airflow"}
    source = "\n".join(
        p.read_text()
        for d in ("core/deltaglider_core", "airflow_provider_deltaglider")
        for p in (root / d).rglob("*.py")
    )
    for name in names:
        module = module_of.get(name, name.replace("-", "_"))
        used = re.search(rf"^\s*(import|from) {module}\b", source, re.M) or f'find_spec("{module}")' in source
        assert used, f"{name} is declared but the product never imports {module}"


def test_readme_links_resolve_on_a_package_index() -> None:
    """README.md is the package's long description: a relative link would point nowhere there."""
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    relative = re.findall(r"\]\((?!https?://)([^)]+)\)", readme)
    assert relative == [], f"relative links in README.md: {relative}"
