"""Render BucketStats as a text table, JSON, and a self-contained HTML page with a bar chart."""

from __future__ import annotations

import html
import json
from pathlib import Path

from deltaglider_core.ops.stats import BucketStats
from deltaglider_core.support.progress import human_bytes


def _num(value: int | None) -> str:
    return "n/a" if value is None else human_bytes(value)


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def render_table(stats: BucketStats) -> str:
    head = ("deltaspace", "objects", "deltas", "refs", "original", "stored", "saved")
    rows = [
        (s.prefix or "(root)", str(s.objects), str(s.deltas), str(s.references), _num(s.original_bytes),
         _num(s.stored_bytes), _pct(s.saved_ratio))
        for s in stats.deltaspaces
    ]  # fmt: skip
    total = ("TOTAL", str(stats.objects), str(stats.deltas), str(stats.references), _num(stats.original_bytes),
             _num(stats.stored_bytes), _pct(stats.saved_ratio))  # fmt: skip
    widths = [max(len(r[i]) for r in [head, *rows, total]) for i in range(len(head))]

    def fmt(row: tuple[str, ...]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True)))

    rule = "  ".join("-" * w for w in widths)
    lines = [f"s3://{stats.bucket}/{stats.prefix}", fmt(head), rule, *map(fmt, rows), rule, fmt(total)]
    if stats.orphaned_references:
        lines.append(
            "orphaned references: " + ", ".join(f"{o.key} ({human_bytes(o.size)})" for o in stats.orphaned_references)
        )
    return "\n".join(lines)


def render_html(stats: BucketStats) -> str:
    spaces = [s for s in stats.deltaspaces if s.objects]
    peak = max([s.original_bytes or s.stored_bytes for s in spaces] + [1])
    bar_h, gap, label_w, chart_w = 14, 10, 220, 480
    bars = []
    for i, s in enumerate(spaces):
        y = i * (2 * bar_h + gap)
        orig_w = chart_w * (s.original_bytes or 0) / peak
        stored_w = chart_w * s.stored_bytes / peak
        name = html.escape(s.prefix or "(root)")
        bars.append(
            f'<text x="0" y="{y + bar_h}" font-size="12">{name}</text>'
            f'<rect x="{label_w}" y="{y}" width="{orig_w:.1f}" height="{bar_h}" fill="#9ab"/>'
            f'<rect x="{label_w}" y="{y + bar_h}" width="{stored_w:.1f}" height="{bar_h}" fill="#264"/>'
            f'<text x="{label_w + max(orig_w, stored_w) + 6:.1f}" y="{y + 2 * bar_h - 2}" font-size="11">'
            f"{_num(s.original_bytes)} → {_num(s.stored_bytes)} ({_pct(s.saved_ratio)} saved)</text>"
        )
    height = max(len(spaces), 1) * (2 * bar_h + gap)
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{label_w + chart_w + 260}" height="{height}">'
        + "".join(bars)
        + "</svg>"
    )
    table = html.escape(render_table(stats))
    title = html.escape(f"DeltaGlider storage report: s3://{stats.bucket}/{stats.prefix}")
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<title>{title}</title>"
        "<style>body{font-family:sans-serif;margin:2em}pre{background:#f4f4f4;padding:1em}"
        ".k{display:inline-block;width:1em;height:1em;vertical-align:middle}</style></head><body>"
        f"<h1>{title}</h1>"
        f"<p>Original {_num(stats.original_bytes)}, stored {_num(stats.stored_bytes)}, "
        f"saved {_num(stats.saved_bytes)} ({_pct(stats.saved_ratio)}) across {stats.objects} objects.</p>"
        "<p><span class='k' style='background:#9ab'></span> original "
        "<span class='k' style='background:#264'></span> stored</p>"
        f"{svg}<h2>Table</h2><pre>{table}</pre>"
        f"<script type='application/json' id='stats'>{html.escape(json.dumps(stats.to_dict()))}</script>"
        "</body></html>"
    )


def write_reports(stats: BucketStats, report_path: str | Path) -> dict[str, str]:
    """Write ``<base>.json`` and ``<base>.html``; ``report_path`` may end in either suffix or none."""
    base = Path(report_path)
    if base.suffix in (".json", ".html"):
        base = base.with_suffix("")
    base.parent.mkdir(parents=True, exist_ok=True)
    json_path, html_path = base.with_suffix(".json"), base.with_suffix(".html")
    json_path.write_text(json.dumps(stats.to_dict(), indent=2))
    html_path.write_text(render_html(stats))
    return {"json": str(json_path), "html": str(html_path)}
