"""docs/performance.md quotes the committed benchmark results, and `make bench` keeps it so."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.run import DOCS, DOCS_END, DOCS_START, update_docs

ROOT = Path(__file__).resolve().parents[2]


def test_docs_quote_the_latest_results() -> None:
    latest = (ROOT / "benchmarks" / "results" / "latest.md").read_text()
    text = DOCS.read_text()
    assert text.split(DOCS_START, 1)[1].split(DOCS_END, 1)[0] == "\n" + latest


def test_update_docs_replaces_only_the_marked_section(tmp_path: Path) -> None:
    doc = tmp_path / "perf.md"
    doc.write_text(f"# Perf\nintro\n{DOCS_START}\nold table\n{DOCS_END}\n\n## After\ntext\n")
    update_docs(doc, "new table\n")
    assert doc.read_text() == f"# Perf\nintro\n{DOCS_START}\nnew table\n{DOCS_END}\n\n## After\ntext\n"
    doc.write_text("no markers here\n")
    with pytest.raises(ValueError, match="perf.md has no"):
        update_docs(doc, "x\n")
    assert doc.read_text() == "no markers here\n"
