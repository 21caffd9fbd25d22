"""The docs quote the committed benchmark results (performance.md is rewritten by `make bench`)."""

from __future__ import annotations

import json
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


def test_overview_quotes_the_latest_figures() -> None:
    results = json.loads((ROOT / "benchmarks" / "results" / "latest.json").read_text())
    series = {s["corpus"]: s for s in results["series"]}
    index = (ROOT / "docs" / "index.md").read_text()
    nightly, drifting = series["nightly"], series["drifting-large"]
    for s in (nightly, drifting):
        row = (
            f"| **{100 * s['ours_stored_ratio']:.1f}%** | {100 * s['ours_one_reference_stored_ratio']:.1f}% | "
            f"{100 * s['peer_stored_ratio']:.1f}% |"
        )
        assert row in index
    migration = results["migrate"]
    assert f"**{100 * migration['ours_stored_bytes'] / migration['peer_stored_bytes']:.0f}%** of DeltaGlider" in index
    assert f"| {nightly['upload_speedup']:.1f}x / {nightly['download_speedup']:.1f}x on the nightly series |" in index
    assert f"| {migration['migrate_speedup']:.1f}x objects/s," in index
    assert f"| {results['bucket']['stats_speedup']:.1f}x objects/s" in index
