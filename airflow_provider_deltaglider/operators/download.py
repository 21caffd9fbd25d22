"""DeltaGliderDownloadOperator: reconstruct and verify files from a deltaspace."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from deltaglider_core.errors import InvalidLocation
from deltaglider_core.parallel import run_grouped
from deltaglider_core.paths import plan_local_files
from deltaglider_core.progress import Progress, human_bytes

from airflow_provider_deltaglider.compat import AirflowException

from .base import DeltaGliderBaseOperator, connection_template_fields, split_url, task_entry


class DeltaGliderDownloadOperator(DeltaGliderBaseOperator):
    """Download ``source`` (``s3://bucket/key``, or a prefix ending in ``/`` plus ``pattern``) to ``dest``.

    Every file is reconstructed, verified by SHA-256 and renamed into place only when correct. Keys that
    would escape ``dest`` (``..`` segments, absolute paths, backslashes) are refused and reported; the rest
    continue, and the task fails at the end naming them.

    :param source: ``s3://bucket/key`` or ``s3://bucket/prefix/``. Templated.
    :param dest: local directory; for a single key also a file path (a path ending in ``/`` is a
        directory). Templated.
    :param pattern: glob on the key below the prefix (default ``*``). Templated.

    Returns ``{"files": [{key, path, size, sha256, kind}], "count", "bytes", "refused": [...]}``.
    """

    template_fields: Sequence[str] = connection_template_fields("source", "dest", "pattern")

    def __init__(self, *, source: str, dest: str, pattern: str = "*", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.source = source
        self.dest = dest
        self.pattern = pattern

    def preflight_bucket(self) -> str | None:
        return split_url(self.source)[0]

    def _targets(self, bucket: str, prefix: str) -> tuple[list[tuple[str, Path]], list[str]]:
        store = self.hook.get_store()
        dest = Path(self.dest)
        if prefix and not prefix.endswith("/"):
            if self.dest.endswith(("/", os.sep)) or dest.is_dir():
                dest.mkdir(parents=True, exist_ok=True)
                return [(prefix, dest / prefix.rpartition("/")[2])], []
            return [(prefix, dest)], []
        dest.mkdir(parents=True, exist_ok=True)
        matching = [
            (obj.key, obj.key[len(prefix) :])
            for obj in store.list(bucket, prefix, with_metadata=False)
            if fnmatchcase(obj.key[len(prefix) :], self.pattern)
        ]
        targets, refused = plan_local_files(dest, matching, bucket=bucket)
        for message in refused:
            self.log.error("%s", message)
        return targets, refused

    @task_entry
    def execute(self, context: Any) -> dict[str, Any]:
        started = time.monotonic()
        bucket, prefix = split_url(self.source)
        store = self.hook.get_store()
        store.s3.ensure_bucket(bucket)
        targets, refused = self._targets(bucket, prefix)
        if not targets and not refused:
            raise InvalidLocation(f"Nothing under s3://{bucket}/{prefix} matches {self.pattern!r}.")
        progress = Progress("download", len(targets), None, self.log)

        def fetch(target: tuple[str, Path]) -> dict[str, Any] | None:
            key, path = target
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                result = store.get(bucket, key, path)
            except OSError as exc:  # the local file system refused this one: report it, go on with the rest
                self.log.error("could not write s3://%s/%s to %s: %s", bucket, key, path, exc)
                refused.append(f"s3://{bucket}/{key}: could not write {path}: {exc}")
                return None
            progress.advance(1, result.size)
            return {"key": key, "path": result.path, "size": result.size, "sha256": result.sha256,
                    "kind": result.kind, "verified": result.verified}  # fmt: skip

        # Independent reads in parallel (their decodes on every core); the report keeps the listing's order.
        fetched = run_grouped(targets, lambda target: target[0], fetch, store.max_workers, store.warm_up)
        files = [f for f in fetched if f is not None]
        progress.finish()
        summary = {
            "source": self.source,
            "files": files,
            "count": len(files),
            "bytes": sum(f["size"] for f in files),
            "refused": refused,
            "duration_s": round(time.monotonic() - started, 3),
        }
        where = dest_dir if (dest_dir := Path(self.dest)).is_dir() else dest_dir.parent
        self.log.info(
            "downloaded %d file(s), %s, verified, to %s", len(files), human_bytes(summary["bytes"]), where.resolve()
        )
        if refused:
            raise AirflowException(
                f"Downloaded {len(files)} file(s) but could not write {len(refused)} key(s): " + "; ".join(refused[:20])
            )
        return summary
