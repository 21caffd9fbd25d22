"""DeltaGliderUploadOperator: upload local files (paths, globs) into a deltaspace."""

from __future__ import annotations

import glob
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from airflow.sdk import Asset
from deltaglider_core.errors import InvalidLocation
from deltaglider_core.format import folder
from deltaglider_core.progress import Progress

from airflow_provider_deltaglider.assets import deltaspace_asset

from .base import DeltaGliderBaseOperator, connection_template_fields, fail_fast, ratio, split_url

_GLOB_CHARS = set("*?[")


def resolve_sources(source: str | Sequence[str], *, allow_empty: bool = False) -> list[Path]:
    """Expand paths and globs (``**`` recursive) into existing regular files, sorted, without repeats."""
    patterns = [source] if isinstance(source, str) else list(source)
    found: dict[str, Path] = {}
    for pattern in patterns:
        if _GLOB_CHARS & set(pattern):
            for match in sorted(glob.glob(pattern, recursive=True)):
                if os.path.isfile(match):
                    found.setdefault(os.path.abspath(match), Path(match))
            continue
        path = Path(pattern)
        if not path.is_file():
            raise InvalidLocation(f"Local file {pattern!r} does not exist or is not a regular file: check the path.")
        if not os.access(path, os.R_OK):
            raise InvalidLocation(f"Local file {pattern!r} is not readable: check its permissions.")
        found.setdefault(os.path.abspath(path), path)
    if not found and not allow_empty:
        raise InvalidLocation(
            f"No files match {patterns!r}: check the path or glob, or set allow_empty=True to succeed with no files."
        )
    return list(found.values())


class DeltaGliderUploadOperator(DeltaGliderBaseOperator):
    """Upload files into ``dest`` (``s3://bucket/prefix/``), delta-compressing archives.

    :param source: a path, a glob (``**`` allowed) or a list of them. Templated.
    :param dest: ``s3://bucket/prefix/``; each file is stored as ``prefix/<file name>``. Templated.
    :param max_ratio: store a file directly when its delta exceeds this fraction (default: connection, 0.5).
        Templated.
    :param allow_empty: succeed when nothing matches (default False: fail naming the pattern).

    Returns (XCom) ``{"dest", "files": [{key, stored_key, kind, original_size, stored_size, ratio, sha256,
    ref_key, ...}], "count", "original_bytes", "stored_bytes", "saved_bytes", "saved_ratio", "duration_s"}``.
    When ``dest`` has no template, the operator's outlet is the deltaspace's asset, named and addressed
    ``s3://bucket/prefix`` (no trailing slash; see ``assets.py``), and each run emits an event.
    """

    template_fields: Sequence[str] = connection_template_fields("source", "dest", "max_ratio")

    def __init__(
        self,
        *,
        source: str | Sequence[str],
        dest: str,
        max_ratio: float | str | None = None,
        allow_empty: bool = False,
        **kwargs: Any,
    ) -> None:
        if "outlets" not in kwargs and "{{" not in dest:
            kwargs["outlets"] = [deltaspace_asset(dest)]
        super().__init__(**kwargs)
        self.source = source
        self.dest = dest
        self.max_ratio = max_ratio
        self.allow_empty = allow_empty

    def preflight_bucket(self) -> str | None:
        return split_url(self.dest)[0]

    @fail_fast
    def execute(self, context: Any) -> dict[str, Any]:
        started = time.monotonic()
        bucket, prefix = split_url(self.dest)
        base = folder(prefix)
        files = resolve_sources(self.source, allow_empty=self.allow_empty)
        store = self.hook.get_store()
        store.s3.ensure_bucket(bucket)
        progress = Progress("upload", len(files), sum(f.stat().st_size for f in files), self.log)
        results = []
        for path in files:
            result = store.put(path, bucket, base + path.name, max_ratio=ratio(self.max_ratio))
            results.append(result.to_dict())
            progress.advance(1, result.original_size)
        progress.finish()
        original = sum(r["original_size"] for r in results)
        stored = sum(r["stored_size"] for r in results)
        summary = {
            "dest": f"s3://{bucket}/{base}",
            "files": results,
            "count": len(results),
            "original_bytes": original,
            "stored_bytes": stored,
            "saved_bytes": original - stored,
            "saved_ratio": round((original - stored) / original, 6) if original else None,
            "duration_s": round(time.monotonic() - started, 3),
        }
        for outlet in self.outlets or []:
            if isinstance(outlet, Asset):
                context["outlet_events"][outlet].extra = {
                    k: summary[k] for k in ("count", "original_bytes", "stored_bytes")
                }
        self.log.info("uploaded %d file(s) to %s: %d -> %d bytes", len(results), summary["dest"], original, stored)
        return summary
