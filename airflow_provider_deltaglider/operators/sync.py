"""DeltaGliderSyncOperator: local directory <-> S3 prefix, transferring only what changed."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from deltaglider_core import InvalidLocation
from deltaglider_core.ops import sync_down, sync_up

from airflow_provider_deltaglider.compat import AirflowException

from .base import DeltaGliderBaseOperator, connection_template_fields, ratio, split_url, task_entry


class DeltaGliderSyncOperator(DeltaGliderBaseOperator):
    """Sync a local directory to ``s3://bucket/prefix/`` or the other way round.

    The direction follows the arguments: ``source`` local and ``dest`` an ``s3://`` URL uploads; the
    reverse downloads. Files are compared by size, then SHA-256 where the metadata has it, else
    modification time.

    :param source: local directory or ``s3://bucket/prefix/``. Templated.
    :param dest: ``s3://bucket/prefix/`` or local directory. Templated.
    :param delete: also delete what no longer exists on the source side (default False).
    :param include: globs a relative path must match (any). Templated.
    :param exclude: globs that exclude a relative path. Templated.
    :param dry_run: report what would change, change nothing.
    :param max_ratio: upload only: per-file delta ratio limit.

    Returns ``{"direction", "source", "dest", "dry_run", "transferred": [...], "transferred_count",
    "deleted": [...], "deleted_count", "unchanged", "refused": [...], "bytes_transferred", "duration_s"}``.
    """

    template_fields: Sequence[str] = connection_template_fields("source", "dest", "include", "exclude", "max_ratio")

    def __init__(
        self,
        *,
        source: str,
        dest: str,
        delete: bool = False,
        include: Sequence[str] | None = None,
        exclude: Sequence[str] | None = None,
        dry_run: bool = False,
        max_ratio: float | str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.source = source
        self.dest = dest
        self.delete = delete
        self.include = include
        self.exclude = exclude
        self.plan_only = dry_run  # not self.dry_run: that is BaseOperator.dry_run()
        self.max_ratio = max_ratio

    def _remote(self) -> str:
        up, down = self.dest.startswith("s3://"), self.source.startswith("s3://")
        if up == down:
            raise InvalidLocation(f"Sync needs exactly one s3:// side: got source={self.source!r}, dest={self.dest!r}.")
        return self.dest if up else self.source

    def preflight_bucket(self) -> str | None:
        return split_url(self._remote())[0]

    @task_entry
    def execute(self, context: Any) -> dict[str, Any]:
        bucket, prefix = split_url(self._remote())
        store = self.hook.get_store()
        store.ensure_bucket(bucket)
        if self.dest.startswith("s3://"):
            report = sync_up(
                store, self.source, bucket, prefix, delete=self.delete, include=self.include, exclude=self.exclude,
                dry_run=self.plan_only, max_ratio=ratio(self.max_ratio), logger=self.log,
            )  # fmt: skip
        else:
            report = sync_down(
                store, bucket, prefix, self.dest, delete=self.delete, include=self.include, exclude=self.exclude,
                dry_run=self.plan_only, logger=self.log,
            )  # fmt: skip
        self.log.info(
            "sync %s: %d transferred, %d deleted, %d unchanged%s",
            report.direction, len(report.transferred), len(report.deleted), report.unchanged,
            " (dry run)" if self.plan_only else "",
        )  # fmt: skip
        if report.refused:
            raise AirflowException(
                f"Sync could not write {len(report.refused)} key(s): " + "; ".join(report.refused[:20])
            )
        return report.to_dict()
