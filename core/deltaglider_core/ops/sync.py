"""Directory <-> prefix sync: transfer only what changed, optionally mirror deletions.

Changed means: missing on the other side, a different size, a different SHA-256 where the stored
metadata has one, or else a newer modification time. Downloads never write outside the destination
directory; uploads do not follow symlinks that leave the source directory.
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from deltaglider_core.errors import InvalidLocation
from deltaglider_core.models import ObjectInfo, jsonable
from deltaglider_core.ops.selection import selected
from deltaglider_core.ops.transfer import fetch_all, put_all
from deltaglider_core.storage.format import folder
from deltaglider_core.storage.store import DeltaStore
from deltaglider_core.support.digest import sha256_file
from deltaglider_core.support.paths import inside, plan_local_files
from deltaglider_core.support.progress import LogLike


@dataclass(frozen=True)
class SyncReport:
    direction: str
    source: str
    dest: str
    dry_run: bool
    transferred: tuple[str, ...]
    deleted: tuple[str, ...]
    unchanged: int
    refused: tuple[str, ...]
    bytes_transferred: int
    duration_s: float

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = jsonable(asdict(self))
        out.update(transferred_count=len(self.transferred), deleted_count=len(self.deleted))
        return out


def local_files(root: Path, log: LogLike) -> Iterator[tuple[str, Path]]:
    """(relative posix path, path) of regular files under ``root``; symlinks leaving it are skipped."""
    for dirpath, _dirs, files in os.walk(root, followlinks=False):
        for name in sorted(files):
            path = Path(dirpath) / name
            if path.is_symlink() and not inside(root, path):
                log.warning("skipping %s: symlink to %s leaves %s", path, os.path.realpath(path), root)
                continue
            if path.is_file():
                yield path.relative_to(root).as_posix(), path


def _differs(local: Path, remote: ObjectInfo, remote_is_newer: bool) -> bool:
    """True when the two copies differ: size, then SHA-256 if recorded, else modification time."""
    stat = local.stat()
    if remote.original_size is not None and remote.original_size != stat.st_size:
        return True
    if remote.sha256 is not None:
        return sha256_file(local) != remote.sha256
    if remote.last_modified is None:
        return True
    local_time = _dt.datetime.fromtimestamp(stat.st_mtime, _dt.timezone.utc)
    return remote.last_modified > local_time if remote_is_newer else local_time > remote.last_modified


def sync_up(
    store: DeltaStore,
    local_dir: str | os.PathLike[str],
    bucket: str,
    prefix: str,
    *,
    delete: bool = False,
    include: Sequence[str] | None = None,
    exclude: Sequence[str] | None = None,
    dry_run: bool = False,
    max_ratio: float | None = None,
    logger: LogLike | None = None,
) -> SyncReport:
    log = logger or logging.getLogger(__name__)
    started = time.monotonic()
    root = Path(local_dir)
    if not root.is_dir():
        raise InvalidLocation(f"Sync source {str(root)!r} is not a directory: check the path.")
    base = folder(prefix)
    remote = {o.key[len(base) :]: o for o in store.list(bucket, base)}
    local = {rel: path for rel, path in local_files(root, log) if selected(rel, include, exclude)}
    todo = [rel for rel, path in local.items() if rel not in remote or _differs(path, remote[rel], False)]
    gone = sorted(rel for rel in remote if rel not in local and selected(rel, include, exclude)) if delete else []
    sent = 0
    if not dry_run:
        stored_as = [(local[rel], base + rel) for rel in todo]
        sent = sum(
            r.original_size for r in put_all(store, stored_as, bucket, max_ratio=max_ratio, log=log, what="sync up")
        )
        for rel in gone:
            store.delete(bucket, base + rel)
    return SyncReport(
        direction="upload",
        source=str(root),
        dest=f"s3://{bucket}/{base}",
        dry_run=dry_run,
        transferred=tuple(base + r for r in todo),
        deleted=tuple(base + r for r in gone),
        unchanged=len(local) - len(todo),
        refused=(),
        bytes_transferred=sent,
        duration_s=round(time.monotonic() - started, 3),
    )


def _fetch(
    store: DeltaStore, bucket: str, items: list[tuple[ObjectInfo, Path]], log: LogLike, refused: list[str]
) -> tuple[int, list[str]]:
    """Download each object to its path, stamping the object's modification time; (bytes, keys) received.
    A file the local file system refuses is reported in ``refused`` and the others go on."""
    stamps = {obj.key: obj.last_modified.timestamp() for obj, _ in items if obj.last_modified is not None}

    def stamp(key: str, path: Path) -> None:
        if key in stamps:
            os.utime(path, (stamps[key], stamps[key]))

    targets = [(obj.key, path) for obj, path in items]
    results = fetch_all(
        store, bucket, targets, log=log, refused=refused, what="sync down", name_failures="sync", written=stamp
    )
    done = [(key, r) for (key, _), r in zip(targets, results, strict=True) if r is not None]
    return sum(r.size for _, r in done), [key for key, _ in done]


def sync_down(
    store: DeltaStore,
    bucket: str,
    prefix: str,
    local_dir: str | os.PathLike[str],
    *,
    delete: bool = False,
    include: Sequence[str] | None = None,
    exclude: Sequence[str] | None = None,
    dry_run: bool = False,
    logger: LogLike | None = None,
) -> SyncReport:
    log = logger or logging.getLogger(__name__)
    started = time.monotonic()
    root = Path(local_dir)
    root.mkdir(parents=True, exist_ok=True)
    base = folder(prefix)
    listed = {o.key: o for o in store.list(bucket, base) if selected(o.key[len(base) :], include, exclude)}
    planned, refused = plan_local_files(root, [(key, key[len(base) :]) for key in listed], bucket=bucket)
    for message in refused:
        log.error("%s", message)
    wanted = {key[len(base) :]: (listed[key], path) for key, path in planned}
    todo = [rel for rel, (obj, path) in wanted.items() if not path.exists() or _differs(path, obj, True)]
    present = {rel for rel, _ in local_files(root, log)}
    gone = sorted(r for r in present if r not in wanted and selected(r, include, exclude)) if delete else []
    fetched = (
        (0, [base + r for r in todo]) if dry_run else _fetch(store, bucket, [wanted[r] for r in todo], log, refused)
    )
    if not dry_run:
        for rel in gone:
            (root / rel).unlink()
    return SyncReport(
        direction="download",
        source=f"s3://{bucket}/{base}",
        dest=str(root),
        dry_run=dry_run,
        transferred=tuple(fetched[1]),
        deleted=tuple(str(root / r) for r in gone),
        unchanged=len(wanted) - len(todo),
        refused=tuple(refused),
        bytes_transferred=fetched[0],
        duration_s=round(time.monotonic() - started, 3),
    )
