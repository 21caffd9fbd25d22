"""Upload and download of many files: what the upload and download operators (and any other caller) run.

One call each: :func:`upload_files` sends local files into one destination folder, skipping keys that already
hold the same bytes and refusing, before anything is sent, keys that hold other bytes (unless ``replace``);
:func:`download_files` reconstructs one key or every key under a prefix matching a pattern, refusing keys
that would leave the destination directory and reporting local write failures without stopping the rest.
Both run different deltaspaces in parallel (one deltaspace's files in order, so they share a reference) and
log progress through the caller's logger.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from deltaglider_core.errors import DeltaGliderError, InvalidLocation, NotFound
from deltaglider_core.models import GetResult, PutResult
from deltaglider_core.ops.sources import Source
from deltaglider_core.storage.format import folder
from deltaglider_core.storage.store import DeltaStore
from deltaglider_core.support.digest import sha256_file
from deltaglider_core.support.parallel import run_grouped
from deltaglider_core.support.paths import plan_local_files
from deltaglider_core.support.progress import LogLike, Progress, human_bytes


def put_all(
    store: DeltaStore,
    items: Sequence[tuple[Path, str]],
    bucket: str,
    *,
    max_ratio: float | None,
    log: LogLike,
    what: str = "upload",
) -> list[PutResult]:
    """Store each ``(path, key)``: different deltaspaces (and files stored whole) in parallel, one deltaspace's
    files in order, so they share a reference; progress logged as ``what``. Results in ``items``' order."""
    progress = Progress(what, len(items), sum(path.stat().st_size for path, _ in items), log)

    def put(item: tuple[Path, str]) -> PutResult:
        result = store.put(item[0], bucket, item[1], max_ratio=max_ratio)
        progress.advance(1, result.original_size)
        return result

    results = run_grouped(items, lambda item: store.write_group(bucket, item[1]), put, store.max_workers, store.warm_up)
    progress.finish()
    return results


def fetch_all(
    store: DeltaStore,
    bucket: str,
    items: Sequence[tuple[str, Path]],
    *,
    log: LogLike,
    refused: list[str],
    what: str = "download",
    name_failures: str | None = None,
    written: Callable[[str, Path], None] | None = None,
) -> list[GetResult | None]:
    """Reconstruct each ``(key, path)``, in parallel (reads are independent; the paths were planned apart).
    A file the local file system refuses is logged and added to ``refused`` (None in the results) and the
    others go on; ``name_failures`` (e.g. "sync") puts itself, the key and the path in front of a failed read's
    message; ``written``
    hears each file written. Results in ``items``' order."""
    progress = Progress(what, len(items), None, log)

    def fetch(item: tuple[str, Path]) -> GetResult | None:
        key, path = item
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            result = store.get(bucket, key, path)
        except DeltaGliderError as exc:
            if name_failures is None:
                raise
            raise exc.with_message(f"{name_failures} of s3://{bucket}/{key} to {path} failed: {exc}") from exc
        except OSError as exc:  # the local file system refused this one: report it, go on with the rest
            log.error("could not write s3://%s/%s to %s: %s", bucket, key, path, exc)
            refused.append(f"s3://{bucket}/{key}: could not write {path}: {exc}")
            return None
        if written is not None:
            written(key, path)
        progress.advance(1, result.size)
        return result

    results = run_grouped(items, lambda item: item[0], fetch, store.max_workers, store.warm_up)
    progress.finish()
    return results


def _unchanged(store: DeltaStore, bucket: str, base: str, sources: Sequence[Source], replace: bool) -> set[str]:
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
        elif not replace:
            differ.append(f"s3://{bucket}/{base}{item.name}")
    if differ:
        raise InvalidLocation(
            f"{len(differ)} key(s) already hold different content: {', '.join(differ[:20])}. Nothing was "
            "uploaded: set replace=True to overwrite them, or upload under new names."
        )
    return same


def upload_files(
    store: DeltaStore,
    sources: Sequence[Source],
    bucket: str,
    prefix: str,
    *,
    max_ratio: float | None = None,
    replace: bool = False,
    log: LogLike,
    started: float | None = None,
) -> dict[str, Any]:
    """Store each source as ``<prefix folder>/<source name>``; the summary the upload operator returns.
    ``duration_s`` counts from ``started`` (a ``time.monotonic()`` value; default: now)."""
    started = time.monotonic() if started is None else started
    base = folder(prefix)
    store.ensure_bucket(bucket)
    unchanged = _unchanged(store, bucket, base, sources, replace)
    todo = [s for s in sources if s.name not in unchanged]
    if unchanged:
        log.info("%d file(s) already stored with the same SHA-256, not sent again", len(unchanged))
    stored_as = [(s.path, base + s.name) for s in todo]
    results = [r.to_dict() for r in put_all(store, stored_as, bucket, max_ratio=max_ratio, log=log)]
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
    log.info(
        "uploaded %d file(s) to %s: %s stored as %s (%s saved)%s",
        len(results), summary["dest"], human_bytes(original), human_bytes(stored),
        f"{100 * summary['saved_ratio']:.1f}%" if summary["saved_ratio"] is not None else "nothing",
        f"; {len(unchanged)} unchanged" if unchanged else "",
    )  # fmt: skip
    return summary


def _targets(
    store: DeltaStore, bucket: str, prefix: str, dest: str, pattern: str, log: LogLike
) -> tuple[list[tuple[str, Path]], list[str]]:
    where = Path(dest)
    if prefix and not prefix.endswith("/"):
        if dest.endswith(("/", os.sep)) or where.is_dir():
            where.mkdir(parents=True, exist_ok=True)
            return [(prefix, where / prefix.rpartition("/")[2])], []
        return [(prefix, where)], []
    where.mkdir(parents=True, exist_ok=True)
    matching = [
        (obj.key, obj.key[len(prefix) :])
        for obj in store.list(bucket, prefix, with_metadata=False)
        if fnmatchcase(obj.key[len(prefix) :], pattern)
    ]
    targets, refused = plan_local_files(where, matching, bucket=bucket)
    for message in refused:
        log.error("%s", message)
    return targets, refused


def download_files(
    store: DeltaStore,
    bucket: str,
    prefix: str,
    dest: str,
    *,
    pattern: str = "*",
    log: LogLike,
    started: float | None = None,
) -> dict[str, Any]:
    """Reconstruct ``s3://bucket/prefix`` (one key, or every key under a prefix ending in ``/`` that matches
    ``pattern``) into ``dest``; the summary the download operator returns. Keys that could not be written
    are listed in ``refused``: the caller decides whether that fails it. ``duration_s`` counts from ``started``
    (a ``time.monotonic()`` value; default: now)."""
    started = time.monotonic() if started is None else started
    store.ensure_bucket(bucket)
    targets, refused = _targets(store, bucket, prefix, dest, pattern, log)
    if not targets and not refused:
        raise InvalidLocation(f"Nothing under s3://{bucket}/{prefix} matches {pattern!r}.")
    fetched = fetch_all(store, bucket, targets, log=log, refused=refused)
    files: list[dict[str, Any]] = [
        {"key": key, "path": r.path, "size": r.size, "sha256": r.sha256, "kind": r.kind, "verified": r.verified}
        for (key, _), r in zip(targets, fetched, strict=True)
        if r is not None
    ]
    summary = {
        "source": f"s3://{bucket}/{prefix}",
        "files": files,
        "count": len(files),
        "bytes": sum(f["size"] for f in files),
        "refused": refused,
        "duration_s": round(time.monotonic() - started, 3),
    }
    where = dest_dir if (dest_dir := Path(dest)).is_dir() else dest_dir.parent
    log.info("downloaded %d file(s), %s, verified, to %s", len(files), human_bytes(summary["bytes"]), where.resolve())
    return summary
