"""DeltaGliderPruneOperator: remove references that no stored delta needs, safely (dry run by default)."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence
from typing import Any

from .base import DeltaGliderBaseOperator, connection_template_fields, split_location, task_entry


class DeltaGliderPruneOperator(DeltaGliderBaseOperator):
    """Remove references no delta names any more, in two phases a grace period apart (see ``prune.py``).

    Deleting a file never deletes its reference (a writer may be storing a delta against it at that moment);
    this task does, safely: a reference no delta names and older than ``grace_period`` is moved to
    ``.deltaglider/trash/``, and a later run, after another grace period, purges it, or puts it back if a
    delta named it after all. Readers fall back to the trash copy in between.

    :param location: ``bucket`` or ``s3://bucket/prefix/``. Templated.
    :param grace_period: how long a reference must have existed, and an entry waited in the trash (default
        24 hours; longer than any upload takes).
    :param dry_run: report only (default True: set False to change anything).

    Returns ``{"bucket", "prefix", "dry_run", "grace_s", "trashed", "restored", "purged", "kept_recent",
    "duration_s", "held"}``.
    """

    template_fields: Sequence[str] = connection_template_fields("location")

    def __init__(
        self,
        *,
        location: str,
        grace_period: _dt.timedelta = _dt.timedelta(hours=24),
        dry_run: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.location = location
        self.grace_period = grace_period
        self.plan_only = dry_run  # not self.dry_run: that is BaseOperator.dry_run()

    def preflight_bucket(self) -> str | None:
        return split_location(self.location)[0]

    @task_entry
    def execute(self, context: Any) -> dict[str, Any]:
        bucket, prefix = split_location(self.location)
        report = self.hook.get_store().prune(bucket, prefix, grace=self.grace_period, dry_run=self.plan_only)
        self.log.info(
            "prune s3://%s/%s%s: %d reference(s) trashed, %d restored, %d purged, %d too recent, %d held in the "
            "trash (deltas need them and their key holds another reference)",
            bucket, prefix, " (dry run: nothing changed)" if self.plan_only else "", len(report.trashed),
            len(report.restored), len(report.purged), len(report.kept_recent), len(report.held),
        )  # fmt: skip
        return report.to_dict()
