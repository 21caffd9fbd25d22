"""``make check``: the quick loop for the change at hand (lint, the import contract, types, unit tests).

The unit tests run are those of what changed since ``DG_CHECK_BASE`` (default ``HEAD``, i.e. the uncommitted
change): a test file runs when it changed or names a changed module (``deltaglider_core.storage.store``,
``airflow_provider_deltaglider.operators.upload``, ...). A change to shared test support (``tests/*.py``), to
the dependencies or to a module no test names runs every unit test; a change to docs alone runs none.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
UNIT = ROOT / "tests" / "unit"
EVERYTHING = ("pyproject.toml", "tox.ini", "Makefile")


def changed(base: str) -> list[str]:
    tracked = subprocess.run(["git", "diff", "--name-only", base], cwd=ROOT, capture_output=True, text=True, check=True)
    new = subprocess.run(
        ["git", "ls-files", "--others", "--exclude-standard"], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return sorted({*tracked.stdout.split(), *new.stdout.split()})


def module_of(path: str) -> str | None:
    """``core/deltaglider_core/storage/store.py`` -> ``deltaglider_core.storage.store``."""
    if not path.endswith(".py"):
        return None
    parts = Path(path.removeprefix("core/")).with_suffix("").parts
    if parts[0] not in ("deltaglider_core", "airflow_provider_deltaglider"):
        return None
    return ".".join(p for p in parts if p != "__init__")


def unit_tests(files: list[str]) -> list[str] | None:
    """The unit test files to run; None means all of them."""
    if any(f in EVERYTHING or (f.startswith("tests/") and f.count("/") == 1 and f.endswith(".py")) for f in files):
        return None
    chosen = {f for f in files if f.startswith("tests/unit/test_") and (ROOT / f).exists()}
    modules = [m for f in files if (m := module_of(f))]
    tests = sorted(UNIT.glob("test_*.py"))
    for module in modules:
        pattern = re.compile(re.escape(module) + r"\b|" + re.escape(module.rpartition(".")[0]) + r" import .*\b"
                             + re.escape(module.rpartition(".")[2]) + r"\b")  # fmt: skip
        hits = [t for t in tests if pattern.search(t.read_text())]
        if not hits:
            return None  # a module no test names: everything
        chosen.update(str(t.relative_to(ROOT)) for t in hits)
    return sorted(chosen)


def run(*args: str) -> None:
    print("+", " ".join(args), flush=True)
    if subprocess.run(args, cwd=ROOT).returncode != 0:
        sys.exit(1)


def main() -> None:
    files = changed(os.environ.get("DG_CHECK_BASE", "HEAD"))
    run(str(BIN / "ruff"), "check", ".")
    run(str(BIN / "ruff"), "format", "--check", ".")
    run(str(BIN / "lint-imports"), "--no-cache")
    run(str(BIN / "mypy"), "core/deltaglider_core")
    run(str(BIN / "mypy"), "airflow_provider_deltaglider")
    code = [f for f in files if f.endswith((".py", ".toml", ".ini")) or f == "Makefile"]
    if files and not code:
        print("check: only non-code files changed: no unit tests to run")
        return
    tests = unit_tests(code) if files else None
    print(f"check: {len(files)} changed file(s); unit tests: {'all' if tests is None else ', '.join(tests)}")
    chosen = tests if tests is not None else ["tests/unit"]
    # Both cores (pytest-xdist) once the run is more than a few files: the whole unit suite in about 2 minutes.
    parallel = ["-n", "2"] if tests is None or len(tests) > 3 else []
    run(str(BIN / "pytest"), "-q", "-p", "no:cacheprovider", *parallel, *chosen)


if __name__ == "__main__":
    main()
