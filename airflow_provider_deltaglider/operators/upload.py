"""DeltaGliderUploadOperator: upload local files (paths, globs) into a deltaspace."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from typing import Any

from airflow.sdk import Asset, AssetAlias
from deltaglider_core import InvalidLocation
from deltaglider_core.ops import resolve_sources, upload_files

from airflow_provider_deltaglider.assets import UPLOADS_ALIAS, deltaspace_asset, uploads_alias

from .base import DeltaGliderBaseOperator, connection_template_fields, ratio, split_url, task_entry


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

    @task_entry
    def execute(self, context: Any) -> dict[str, Any]:
        started = time.monotonic()
        bucket, prefix = split_url(self.dest)
        sources = resolve_sources(self.source, allow_empty=self.allow_empty, keep_paths=self.keep_paths, log=self.log)
        summary = upload_files(
            self.hook.get_store(), sources, bucket, prefix,
            max_ratio=ratio(self.max_ratio), replace=self.replace, log=self.log, started=started,
        )  # fmt: skip
        extra = {k: summary[k] for k in ("count", "original_bytes", "stored_bytes")}
        for outlet in self.outlets or []:
            if isinstance(outlet, Asset):
                context["outlet_events"][outlet].extra = extra
            elif isinstance(outlet, AssetAlias) and outlet.name == UPLOADS_ALIAS:
                context["outlet_events"][outlet].add(deltaspace_asset(self.dest), extra=extra)
        return summary
