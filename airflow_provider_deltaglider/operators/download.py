"""DeltaGliderDownloadOperator: reconstruct and verify files from a deltaspace."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from deltaglider_core.ops import download_files

from airflow_provider_deltaglider.compat import AirflowException

from .base import DeltaGliderBaseOperator, connection_template_fields, split_url, task_entry


class DeltaGliderDownloadOperator(DeltaGliderBaseOperator):
    """Download ``source`` (``s3://bucket/key``, or a prefix ending in ``/`` plus ``pattern``) to ``dest``.

    Every file is reconstructed, verified against the SHA-256 its object records and renamed into place only
    when correct. An object that records none (uploaded by another tool) is read unverified, with a warning
    and ``verified: false`` in its XCom entry, or refused when the connection is ``strict``. Keys that
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

    @task_entry
    def execute(self, context: Any) -> dict[str, Any]:
        started = time.monotonic()
        bucket, prefix = split_url(self.source)
        store = self.hook.get_store()
        summary = download_files(store, bucket, prefix, self.dest, pattern=self.pattern, log=self.log, started=started)
        summary["source"] = self.source
        refused = summary["refused"]
        if refused:
            raise AirflowException(
                f"Downloaded {summary['count']} file(s) but could not write {len(refused)} key(s): "
                + "; ".join(refused[:20])
            )
        return summary
