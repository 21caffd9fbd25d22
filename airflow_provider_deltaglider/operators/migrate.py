"""DeltaGliderMigrateOperator: S3 -> S3 into delta storage; resumable; fans out with task mapping."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import Any

from deltaglider_core.ops import Migration, parse_shard, shard_list

from airflow_provider_deltaglider.compat import AirflowException
from airflow_provider_deltaglider.hooks.deltaglider import DeltaGliderHook

from .base import DeltaGliderBaseOperator, connection_template_fields, ratio, split_url, task_entry


class DeltaGliderMigrateOperator(DeltaGliderBaseOperator):
    """Copy ``source`` (a bucket or prefix) into delta-compressed storage at ``dest``. The source is never
    modified.

    Objects already at the destination with the same size (and MD5, where the source ETag is one) are
    skipped, so a retried or re-run task continues where it stopped and retries only what failed.
    Per-object failures are collected; the task fails at the end listing the first 20 and the count.

    Scale out with task mapping: ``DeltaGliderMigrateOperator.partial(...).expand(shard=
    DeltaGliderMigrateOperator.shards(16))``. Each shard migrates the objects whose destination
    deltaspace (archives) or key (other files) hashes to it: no overlap, no gap, shared references.

    :param source: ``s3://bucket/prefix/``. Templated.
    :param dest: ``s3://bucket/prefix/``. Templated.
    :param preserve_prefix: keep the last source folder: ``s3://src/a/b/`` -> ``s3://dst/x/`` writes ``x/b/...``.
    :param include: globs (on the key below the source prefix) to migrate. Templated.
    :param exclude: globs to leave out. Templated.
    :param dry_run: plan only; ``planned`` lists the destination keys.
    :param max_ratio: delta ratio limit.
    :param shard: ``"INDEX/COUNT"`` (or ``shard_index`` + ``shard_count``).
    :param max_workers: parallel jobs inside this task (default 8).
    :param source_conn_id: a different connection for reading the source (default: the same).

    Returns ``{"source", "dest", "shard", "dry_run", "scanned", "selected", "migrated", "skipped", "failed",
    "bytes_in", "bytes_stored", "saved_ratio", "duration_s", "objects_per_s", "failures", "planned"}``.
    """

    template_fields: Sequence[str] = connection_template_fields(
        "source", "dest", "include", "exclude", "shard", "max_ratio", "source_conn_id"
    )

    def __init__(
        self,
        *,
        source: str,
        dest: str,
        preserve_prefix: bool = True,
        include: Sequence[str] | None = None,
        exclude: Sequence[str] | None = None,
        dry_run: bool = False,
        max_ratio: float | str | None = None,
        shard: str | None = None,
        shard_index: int | None = None,
        shard_count: int | None = None,
        max_workers: int = 8,
        source_conn_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.source = source
        self.dest = dest
        self.preserve_prefix = preserve_prefix
        self.include = include
        self.exclude = exclude
        self.plan_only = dry_run  # not self.dry_run: that is BaseOperator.dry_run()
        self.max_ratio = max_ratio
        self.shard = shard
        self.shard_index = shard_index
        self.shard_count = shard_count
        self.max_workers = max_workers
        self.source_conn_id = source_conn_id

    @staticmethod
    def shards(count: int) -> list[str]:
        """``["0/N", ..., "N-1/N"]`` for ``.expand(shard=...)``."""
        return shard_list(count)

    @cached_property
    def source_hook(self) -> DeltaGliderHook:
        if self.source_conn_id is None:
            return self.hook
        return DeltaGliderHook(self.source_conn_id)

    def preflight_bucket(self) -> str | None:
        split_url(self.source)
        parse_shard(self.shard, self.shard_index, self.shard_count)
        return split_url(self.dest)[0]

    @task_entry
    def execute(self, context: Any) -> dict[str, Any]:
        src_bucket, src_prefix = split_url(self.source)
        dst_bucket, dst_prefix = split_url(self.dest)
        migration = Migration(
            self.hook.get_store(),
            None if self.source_conn_id is None else self.source_hook.endpoint,
            src_bucket,
            src_prefix,
            dst_bucket,
            dst_prefix,
            preserve_prefix=self.preserve_prefix,
            include=self.include,
            exclude=self.exclude,
            max_ratio=ratio(self.max_ratio),
            shard=parse_shard(self.shard, self.shard_index, self.shard_count),
            max_workers=self.max_workers,
            logger=self.log,
        )
        report = migration.run(dry_run=self.plan_only)
        self.log.info(
            "migrate %s -> %s shard %s: scanned %d, selected %d, migrated %d, skipped %d, failed %d, "
            "%d -> %d bytes in %.1fs",
            report.source, report.dest, report.shard, report.scanned, report.selected, report.migrated,
            report.skipped, report.failed, report.bytes_in, report.bytes_stored, report.duration_s,
        )  # fmt: skip
        if report.failed:
            raise AirflowException(report.failure_summary() + ". Re-run the task to retry only these.")
        return report.to_dict()
