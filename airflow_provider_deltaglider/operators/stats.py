"""DeltaGliderStatsOperator: exact storage figures for a bucket or prefix, as a table, JSON and HTML."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from deltaglider_core.ops import Progress, compute_stats, render_table, write_reports

from .base import DeltaGliderBaseOperator, connection_template_fields, split_location, task_entry


class DeltaGliderStatsOperator(DeltaGliderBaseOperator):
    """Storage statistics: logical objects, delta/direct/regular counts, original and stored bytes (references
    included), savings, per-deltaspace breakdown and orphaned references. A figure that cannot be known
    exactly (quick mode: a delta's original size) is ``null``, never a guess.

    :param location: ``bucket`` or ``s3://bucket/prefix/``. Templated.
    :param detailed: HEAD every delta (bounded parallelism) for exact original sizes and reference use
        (default True; otherwise delta originals are ``null``).
    :param kinds: also HEAD objects stored as they are, to split ``as_is`` into ``direct`` (DeltaGlider
        uploads) and ``regular`` (anything else) counts (default False: those two are ``null``).
    :param report_path: write ``<report_path>.json`` and ``<report_path>.html``. Templated.

    Returns ``BucketStats.to_dict()`` plus ``"reports": {"json", "html"}`` when written.
    """

    template_fields: Sequence[str] = connection_template_fields("location", "report_path")

    def __init__(
        self,
        *,
        location: str,
        detailed: bool = True,
        kinds: bool = False,
        report_path: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.location = location
        self.detailed = detailed
        self.kinds = kinds
        self.report_path = report_path

    def preflight_bucket(self) -> str | None:
        return split_location(self.location)[0]

    @task_entry
    def execute(self, context: Any) -> dict[str, Any]:
        bucket, prefix = split_location(self.location)
        store = self.hook.get_store()
        progress = Progress("stats", 0, None, self.log)  # the total is unknown until the listing ends
        stats = compute_stats(store, bucket, prefix, detailed=self.detailed, kinds=self.kinds, on_page=progress.advance)
        progress.finish()
        self.log.info("DeltaGlider storage stats\n%s", render_table(stats))
        result = stats.to_dict()
        if self.report_path:
            result["reports"] = write_reports(stats, self.report_path)
            self.log.info("reports written: %s", result["reports"])
        return result
