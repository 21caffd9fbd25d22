"""S3 -> S3 migration into delta storage: resumable, sharded, parallel, never touching the source.

Archives of one destination deltaspace form one job, uploaded in key order by one worker, so they share
a reference and always land in the same shard; other objects are jobs of their own (sharded by key).
Jobs run on a bounded thread pool, each object streamed through a temp file.

The source is read as logical objects: a prefix that DeltaGlider (or this project) wrote migrates its files
(``x.zip.delta`` is read back, verified, as ``x.zip``); its references and internal objects are not user
files and are not copied (counted as ``internal``). Plain objects are copied byte for byte.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from deltaglider_core.errors import DeltaGliderError, IntegrityError
from deltaglider_core.models import jsonable
from deltaglider_core.ops.selection import selected, shard_of
from deltaglider_core.ops.versions import version_order
from deltaglider_core.storage.format import DELTA_SUFFIX, folder, logical_key, meta_get
from deltaglider_core.storage.listing import parallel_pages
from deltaglider_core.storage.store import DeltaStore
from deltaglider_core.support.progress import LogLike, Progress
from deltaglider_core.transport.endpoint import Endpoint
from deltaglider_core.transport.s3 import S3, Listed

MAX_LISTED_FAILURES = 20


@dataclass(frozen=True)
class Prefix:
    """One side of a migration: a bucket and a key prefix."""

    bucket: str
    prefix: str

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"


@dataclass(frozen=True)
class MigrationFailure:
    key: str
    error: str


@dataclass(frozen=True)
class MigrationReport:
    source: str
    dest: str
    shard: str
    dry_run: bool
    scanned: int
    selected: int
    migrated: int
    skipped: int
    failed: int
    bytes_in: int
    bytes_stored: int
    saved_ratio: float | None
    duration_s: float
    objects_per_s: float
    failures: tuple[MigrationFailure, ...] = ()
    planned: tuple[str, ...] = ()
    internal: int = 0

    def to_dict(self) -> dict[str, Any]:
        return dict(jsonable(asdict(self)))

    def failure_summary(self) -> str:
        shown = "; ".join(f"{f.key}: {f.error}" for f in self.failures[:MAX_LISTED_FAILURES])
        more = self.failed - min(self.failed, MAX_LISTED_FAILURES)
        return f"{self.failed} object(s) failed to migrate: {shown}" + (f"; and {more} more" if more else "")


def dest_key_for(source_key: str, source_prefix: str, dest_prefix: str, preserve_prefix: bool) -> str:
    """``s3://src/a/b/`` -> ``s3://dst/x/``: ``a/b/k`` becomes ``x/b/k`` (or ``x/k`` without preserve)."""
    root = folder(source_prefix)
    relative = source_key[len(root) :]
    dest_root = folder(dest_prefix)
    kept = root.rstrip("/").rpartition("/")[2] if preserve_prefix and root else ""
    return f"{dest_root}{kept}/{relative}" if kept else f"{dest_root}{relative}"


@dataclass
class _Tally:
    """Counters shared by the worker threads."""

    migrated: int = 0
    skipped: int = 0
    bytes_in: int = 0
    bytes_stored: int = 0
    failures: list[MigrationFailure] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, *, migrated: int = 0, skipped: int = 0, bytes_in: int = 0, bytes_stored: int = 0) -> None:
        with self.lock:
            self.migrated += migrated
            self.skipped += skipped
            self.bytes_in += bytes_in
            self.bytes_stored += bytes_stored

    def fail(self, failure: MigrationFailure) -> None:
        with self.lock:
            self.failures.append(failure)


class Migration:
    """One migration run; see :func:`migrate`."""

    def __init__(
        self,
        store: DeltaStore,
        source: Endpoint | Any | None,
        source_bucket: str,
        source_prefix: str,
        dest_bucket: str,
        dest_prefix: str,
        *,
        preserve_prefix: bool = True,
        include: Sequence[str] | None = None,
        exclude: Sequence[str] | None = None,
        max_ratio: float | None = None,
        shard: tuple[int, int] = (0, 1),
        max_workers: int = 8,
        logger: LogLike | None = None,
    ) -> None:
        """``source``: the source's endpoint (an :class:`Endpoint` or a bare boto3 client); ``None`` (or the
        store's own client) reads the source through the store's own endpoint. Its credentials and verify let
        its HEAD/LIST/GETs use the fast transport (fast_http.py), unless the endpoint switches it off."""
        self.store = store
        same = source is None or source is store.endpoint.client  # the store's own client: its whole endpoint
        self.source_endpoint = store.endpoint if same else Endpoint.of(source)
        self._source: S3 | None = None
        self._source_store: DeltaStore | None = None
        self._internal = 0
        self.src = Prefix(source_bucket, source_prefix)
        self.dst = Prefix(dest_bucket, dest_prefix)
        self.preserve_prefix = preserve_prefix
        self.include, self.exclude = include, exclude
        self.max_ratio = max_ratio
        self.shard = shard
        self.max_workers = max_workers
        self.log: LogLike = logger or logging.getLogger(__name__)

    @property
    def source(self) -> S3:
        """The source's transport, opened on first use and closed at the end of :meth:`run`."""
        if self._source is None:
            self._source = self.source_endpoint.open()
        return self._source

    def plan(self) -> tuple[int, list[list[tuple[Listed, str]]]]:
        """(objects scanned, jobs of (source object, destination key)) for this shard."""
        bucket, prefix = self.src.bucket, self.src.prefix
        root = folder(prefix)
        groups: dict[str, list[tuple[Listed, str]]] = {}
        scanned = 0
        self._internal = 0
        for page in self.source.pages(bucket, root):
            for obj in page.objects:
                scanned += 1
                if obj.key.endswith("/"):  # a folder marker: not a file
                    continue
                logical = logical_key(obj.key)
                if logical is None:  # a reference or internal object: read through the deltas that use it
                    self._internal += 1
                    continue
                if not selected(logical[len(root) :], self.include, self.exclude):
                    continue
                dest_key = dest_key_for(logical, root, self.dst.prefix, self.preserve_prefix)
                group = self.store.write_group(self.dst.bucket, dest_key)
                if shard_of(group, self.shard[1]) == self.shard[0]:
                    groups.setdefault(group, []).append((obj, dest_key))
        # Archives of a deltaspace go in version order (1.0.2 before 1.0.10), so each delta is against a
        # near ancestor and re-basing sees the real drift.
        return scanned, [sorted(v, key=lambda item: version_order(item[1])) for _, v in sorted(groups.items())]

    def _existing(self) -> dict[str, Listed]:
        """The destination's objects, one LIST (resume checks need no per-object HEAD for plain copies)."""
        bucket, prefix = self.dst.bucket, self.dst.prefix
        root = folder(prefix)
        return {obj.key: obj for page in parallel_pages(self.store.s3, bucket, root) for obj in page.objects}

    @property
    def source_store(self) -> DeltaStore:
        """Reads the source's stored deltas (decoded against their references, verified by SHA-256)."""
        if self._source_store is None:
            self._source_store = self.store.sibling(self.source_endpoint)
        return self._source_store

    def _fetch(self, obj: Listed, local: Path) -> None:
        """The source object's file, verified: a delta is reconstructed (and checked) by the source store; a
        plain object with a recorded SHA-256 (stored whole by DeltaGlider or this provider) is checked here,
        so a corrupt source is reported, never copied and stamped with a new hash."""
        if obj.key.endswith(DELTA_SUFFIX):
            self.source_store.get(self.src.bucket, obj.key[: -len(DELTA_SUFFIX)], local)
            return
        digest = hashlib.sha256()
        head = self.source.download(self.src.bucket, obj.key, local, digest.update, size_hint=obj.size)
        recorded = meta_get(head.metadata, "file-sha256")
        if recorded is not None and recorded != digest.hexdigest():
            raise IntegrityError(
                f"s3://{self.src.bucket}/{obj.key} does not match its recorded SHA-256 (dg-file-sha256 {recorded}, "
                f"its bytes {digest.hexdigest()}): the source object is corrupt, so it was not migrated. Restore it "
                "at the source (backup, version history) and run the migration again; the source was not changed."
            )

    def _stored_sha(self, s3: S3, bucket: str, key: str) -> str | None:
        head = s3.head(bucket, key)
        return None if head is None else meta_get(head.metadata, "file-sha256")

    def _already_there(self, obj: Listed, dest_key: str, existing: dict[str, Listed]) -> bool:
        """Same logical key with the same size (and MD5, where both sides have one) at the destination.

        A source delta has no size or MD5 of its own file in the listing: its recorded SHA-256 is compared
        with the destination's instead.
        """
        if obj.key.endswith(DELTA_SUFFIX):
            wanted = self._stored_sha(self.source, self.src.bucket, obj.key)
            for stored in (dest_key + DELTA_SUFFIX, dest_key):
                if stored in existing:
                    return wanted is not None and wanted == self._stored_sha(self.store.s3, self.dst.bucket, stored)
            return False
        source_md5 = obj.etag.strip('"') if obj.etag and "-" not in obj.etag else None
        if dest_key + DELTA_SUFFIX in existing:
            head = self.store.s3.head(self.dst.bucket, dest_key + DELTA_SUFFIX)
            if head is None:
                return False
            size = meta_get(head.metadata, "file-size")
            md5 = meta_get(head.metadata, "md5")
            return size == str(obj.size) and (md5 is None or source_md5 is None or md5 == source_md5)
        plain = existing.get(dest_key)
        if plain is None:
            return False
        dest_md5 = plain.etag.strip('"') if plain.etag and "-" not in plain.etag else None
        return plain.size == obj.size and (dest_md5 is None or source_md5 is None or dest_md5 == source_md5)

    def _run_job(
        self,
        job: list[tuple[Listed, str]],
        existing: dict[str, Listed],
        scratch: Path,
        tally: _Tally,
        progress: Progress,
    ) -> None:
        for obj, dest_key in job:
            try:
                if self._already_there(obj, dest_key, existing):
                    tally.add(skipped=1)
                else:
                    fd, name = tempfile.mkstemp(prefix="obj-", dir=scratch)
                    os.close(fd)
                    local = Path(name)
                    try:
                        self._fetch(obj, local)
                        result = self.store.put(local, self.dst.bucket, dest_key, max_ratio=self.max_ratio)
                    finally:
                        local.unlink(missing_ok=True)
                    tally.add(migrated=1, bytes_in=result.original_size, bytes_stored=result.stored_size)
            except (DeltaGliderError, OSError) as exc:
                tally.fail(MigrationFailure(obj.key, str(exc)))
                self.log.error("migrate s3://%s/%s failed: %s", self.src.bucket, obj.key, exc)
            progress.advance(1, obj.size)

    def run(self, *, dry_run: bool = False) -> MigrationReport:
        started = time.monotonic()
        self.source.ensure_bucket(self.src.bucket)
        self.store.ensure_bucket(self.dst.bucket)
        try:
            return self._run(started, dry_run)
        finally:
            if self._source_store is not None:
                self._source_store.close()
                self._source_store = None
            if self._source is not None:
                self._source.close()
                self._source = None

    def _run(self, started: float, dry_run: bool) -> MigrationReport:
        scanned, jobs = self.plan()
        chosen = [item for job in jobs for item in job]
        tally = _Tally()
        if not dry_run:
            total_bytes = sum(obj.size for obj, _ in chosen)
            progress = Progress("migrate", len(chosen), total_bytes, self.log)
            if self.max_workers > 1 and len(jobs) > 1:
                self.store.warm_up()
            with (
                tempfile.TemporaryDirectory(prefix="dg-migrate-") as scratch,
                ThreadPoolExecutor(max_workers=self.max_workers) as pool,
            ):
                existing = self._existing()
                futures = [pool.submit(self._run_job, job, existing, Path(scratch), tally, progress) for job in jobs]
                for future in futures:
                    future.result()
            progress.finish()
        duration = time.monotonic() - started
        saved = (tally.bytes_in - tally.bytes_stored) / tally.bytes_in if tally.bytes_in else None
        return MigrationReport(
            source=self.src.url,
            dest=self.dst.url,
            shard=f"{self.shard[0]}/{self.shard[1]}",
            dry_run=dry_run,
            scanned=scanned,
            selected=len(chosen),
            migrated=tally.migrated,
            skipped=tally.skipped,
            failed=len(tally.failures),
            bytes_in=tally.bytes_in,
            bytes_stored=tally.bytes_stored,
            saved_ratio=round(saved, 6) if saved is not None else None,
            duration_s=round(duration, 3),
            objects_per_s=round((tally.migrated + tally.skipped) / duration, 2) if duration > 0 else 0.0,
            failures=tuple(sorted(tally.failures, key=lambda f: f.key)),
            planned=tuple(dest for _, dest in chosen) if dry_run else (),
            internal=self._internal,
        )
