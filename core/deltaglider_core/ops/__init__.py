"""Operations built on the store, the second half of the public API (the first is :mod:`deltaglider_core`).

Upload and download of many files, sync, migration, releases, storage statistics and reports, and the EC2
region preflight. Imported on first use, like the root package: a DAG file that imports an operator pays for
none of this until a task runs.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from deltaglider_core.ops.ec2 import PreflightResult, RegionMismatch, preflight
    from deltaglider_core.ops.migrate import Migration, MigrationReport
    from deltaglider_core.ops.releases import Release, ReleaseQuery, find_releases, payload
    from deltaglider_core.ops.report import render_table, write_reports
    from deltaglider_core.ops.selection import parse_shard, shard_list
    from deltaglider_core.ops.sources import Source, resolve_sources
    from deltaglider_core.ops.stats import BucketStats, compute_stats, stats_from_dict
    from deltaglider_core.ops.sync import SyncReport, sync_down, sync_up
    from deltaglider_core.ops.transfer import download_files, upload_files
    from deltaglider_core.support.env import parse_flag
    from deltaglider_core.support.progress import Progress, human_bytes

_LAZY = {
    "Migration": "migrate", "MigrationReport": "migrate",
    "PreflightResult": "ec2", "RegionMismatch": "ec2", "preflight": "ec2",
    "Release": "releases", "ReleaseQuery": "releases", "find_releases": "releases", "payload": "releases",
    "render_table": "report", "write_reports": "report",
    "parse_shard": "selection", "shard_list": "selection",
    "Source": "sources", "resolve_sources": "sources",
    "BucketStats": "stats", "compute_stats": "stats", "stats_from_dict": "stats",
    "SyncReport": "sync", "sync_down": "sync", "sync_up": "sync",
    "download_files": "transfer", "upload_files": "transfer",
    "parse_flag": "..support.env", "Progress": "..support.progress", "human_bytes": "..support.progress",
}  # fmt: skip


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    relative = module if module.startswith(".") else f".{module}"
    value = getattr(importlib.import_module(relative, __name__), name)
    globals()[name] = value
    return value


__all__ = [
    "BucketStats",
    "Migration",
    "MigrationReport",
    "PreflightResult",
    "Progress",
    "RegionMismatch",
    "Release",
    "ReleaseQuery",
    "Source",
    "SyncReport",
    "compute_stats",
    "download_files",
    "find_releases",
    "human_bytes",
    "parse_flag",
    "parse_shard",
    "payload",
    "preflight",
    "render_table",
    "resolve_sources",
    "shard_list",
    "stats_from_dict",
    "sync_down",
    "sync_up",
    "upload_files",
    "write_reports",
]
