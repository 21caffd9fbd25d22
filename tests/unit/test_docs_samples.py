"""Every ```python block in README.md and docs/*.md runs (on moto, in a temp directory), so samples cannot rot."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)
SAMPLES = [(doc, i, code) for doc in DOCS for i, code in enumerate(BLOCK.findall(doc.read_text()))]


def test_docs_have_samples() -> None:
    assert len(SAMPLES) >= 8
    assert {d.name for d, _, _ in SAMPLES} >= {"README.md", "quickstart.md", "operators.md", "sensors.md"}


@pytest.mark.parametrize(("doc", "index", "code"), SAMPLES, ids=[f"{d.name}#{i}" for d, i, _ in SAMPLES])
def test_sample_runs(
    doc: Path, index: int, code: str, moto_s3: Any, builds: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    moto_s3.client.create_bucket(Bucket="artifacts")
    for version in (0, 1):
        (tmp_path / f"app-1.0.{version}.zip").write_bytes(builds(version).read_bytes())
    monkeypatch.chdir(tmp_path)
    exec(compile(code, f"{doc.name}#{index}", "exec"), {"__name__": f"doc_sample_{index}"})
