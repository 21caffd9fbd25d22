"""DeltaGliderUploadOperator: upload local files (paths, globs) into a deltaspace."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from typing import Any

from airflow.sdk import Asset, AssetAlias
from deltaglider_core.digest import sha256_file
from deltaglider_core.errors import InvalidLocation, NotFound
from deltaglider_core.format import folder
from deltaglider_core.parallel import run_grouped
from deltaglider_core.progress import Progress, human_bytes

from airflow_provider_deltaglider.assets import UPLOADS_ALIAS, deltaspace_asset, uploads_alias

from .base import DeltaGliderBaseOperator, connection_template_fields, ratio, split_url, task_entry
from .sources import Source, resolve_sources


class DeltaGliderUploadOperator(DeltaGliderBaseOperator):
    """Upload files into ``dest`` (``s3://bucket/prefix/``), delta-compressing archives.

    :param source: a path, a glob (``**`` allowed) or a list of them. Templated.
    :param dest: ``s3://bucket/prefix/``; each file is stored as ``prefix/<file name>``. Templated.
    :param max_ratio: store a file directly when its delta exceeds this fraction (default: connection, 0.5).
        Templated.
    :param allow_empty: succeed when nothing matches (default False: fail naming the pattern).
    :param keep_paths: name each key by the file's path below the glob's root (the folders before the first
        wildcard) instead of its file name alone; without it, two files with one name fail the task before
        anything is sent.
    :param replace: when a key already holds different content, overwrite it (default False: fail naming
        the keys, before anything is sent, as the Amazon provider's ``replace``). A key that already holds
        the same content (same SHA-256) is never sent again: it is reported in ``unchanged``.

    Returns (XCom) ``{"dest", "files": [{key, stored_key, kind, original_size, stored_size, ratio, sha256,
    ref_key, ...}], "count", "original_bytes", "stored_bytes", "saved_bytes", "saved_ratio", "duration_s"}``.
    Each run emits an event on the deltaspace's asset, named and addressed ``s3://bucket/prefix`` (no trailing
    slash; see ``assets.py``): it is the outlet when ``dest`` has no template, else the event goes through
    the ``deltaglider-uploads`` asset alias for the rendered destination. ``outlets=[]`` emits none.
    """

    template_fields: Sequence[str] = connection_template_fields("source", "dest", "max_ratio")

    def __init__(
        self,
        *,
        source: str | Sequence[str],
        dest: str,
        max_ratio: float | str | None = None,
        allow_empty: bool = False,
        keep_paths: bool = False,
        replace: bool = False,
        **kwargs: Any,
    ) -> None:
        if "outlets" not in kwargs and "{{" in dest:
            kwargs["outlets"] = [uploads_alias()]  # the asset is known once the destination is rendered
        elif "outlets" not in kwargs:
            # A bad URL gets no outlet: the task itself fails with the message (a DAG file must still parse).
            with contextlib.suppress(InvalidLocation):
                kwargs["outlets"] = [deltaspace_asset(dest)]
        super().__init__(**kwargs)
        self.source = source
        self.dest = dest
        self.max_ratio = max_ratio
        self.allow_empty = allow_empty
        self.keep_paths = keep_paths
        self.replace = replace

    def preflight_bucket(self) -> str | None:
        return split_url(self.dest)[0]

    def _unchanged(self, store: Any, bucket: str, base: str, sources: list[Source]) -> set[str]:
        """Names whose key already holds the same bytes; fails naming keys that hold other bytes (unless
        ``replace``). One HEAD per file; a local file is hashed only when its key exists."""
        same: set[str] = set()
        differ: list[str] = []
        for item in sources:
            try:
                stored = store.head(bucket, base + item.name)
            except NotFound:
                continue
            if stored.sha256 is not None and stored.sha256 == sha256_file(item.path):
                same.add(item.name)
            elif not self.replace:
                differ.append(f"s3://{bucket}/{base}{item.name}")
        if differ:
            raise InvalidLocation(
                f"{len(differ)} key(s) already hold different content: {', '.join(differ[:20])}. Nothing was "
                "uploaded: set replace=True to overwrite them, or upload under new names."
            )
        return same

    @task_entry
    def execute(self, context: Any) -> dict[str, Any]:
        started = time.monotonic()
        bucket, prefix = split_url(self.dest)
        base = folder(prefix)
        sources = resolve_sources(self.source, allow_empty=self.allow_empty, keep_paths=self.keep_paths, log=self.log)
        store = self.hook.get_store()
        store.s3.ensure_bucket(bucket)
        unchanged = self._unchanged(store, bucket, base, sources)
        todo = [s for s in sources if s.name not in unchanged]
        if unchanged:
            self.log.info("%d file(s) already stored with the same SHA-256, not sent again", len(unchanged))
        progress = Progress("upload", len(todo), sum(s.path.stat().st_size for s in todo), self.log)
        limit = ratio(self.max_ratio)

        def put(item: Source) -> dict[str, Any]:
            result = store.put(item.path, bucket, base + item.name, max_ratio=limit)
            progress.advance(1, result.original_size)
            return result.to_dict()

        # Different deltaspaces (and files stored whole) in parallel; one deltaspace's files in order.
        results = run_grouped(
            todo, lambda item: store.write_group(bucket, base + item.name), put, store.max_workers, store.warm_up
        )
        progress.finish()
        original = sum(r["original_size"] for r in results)
        stored = sum(r["stored_size"] for r in results)
        summary = {
            "dest": f"s3://{bucket}/{base}",
            "files": results,
            "count": len(results),
            "unchanged": sorted(base + name for name in unchanged),
            "original_bytes": original,
            "stored_bytes": stored,
            "saved_bytes": original - stored,
            "saved_ratio": round((original - stored) / original, 6) if original else None,
            "duration_s": round(time.monotonic() - started, 3),
        }
        extra = {k: summary[k] for k in ("count", "original_bytes", "stored_bytes")}
        for outlet in self.outlets or []:
            if isinstance(outlet, Asset):
                context["outlet_events"][outlet].extra = extra
            elif isinstance(outlet, AssetAlias) and outlet.name == UPLOADS_ALIAS:
                context["outlet_events"][outlet].add(deltaspace_asset(self.dest), extra=extra)
        self.log.info(
            "uploaded %d file(s) to %s: %s stored as %s (%s saved)%s",
            len(results), summary["dest"], human_bytes(original), human_bytes(stored),
            f"{100 * summary['saved_ratio']:.1f}%" if summary["saved_ratio"] is not None else "nothing",
            f"; {len(unchanged)} unchanged" if unchanged else "",
        )  # fmt: skip
        return summary
