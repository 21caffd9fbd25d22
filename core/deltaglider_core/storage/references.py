"""Finding, fetching and creating a deltaspace's references.

References are created with a conditional write (``IfNoneMatch="*"``): an existing reference is never
overwritten, and a writer that loses the race uses the winner's reference instead.
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
import threading
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from deltaglider_core.errors import IntegrityError, NotFound, StorageError
from deltaglider_core.storage.cache import ReferenceCache
from deltaglider_core.storage.format import (
    DELTA_SUFFIX,
    INTERNAL_DIR,
    TRASH_PREFIX,
    Location,
    base_generation,
    meta_get,
    reference_metadata,
)
from deltaglider_core.storage.policy import BaseHistory, is_delta_eligible
from deltaglider_core.support.digest import FileDigest, require_unchanged, sha256_file
from deltaglider_core.transport.s3 import S3, Head


@dataclass(frozen=True)
class Reference:
    """A reference as the writer sees it."""

    bucket: str
    key: str
    generation: int
    sha256: str
    size: int
    last_modified: _dt.datetime | None
    source_name: str | None


HOT_REFERENCES = 4
log = logging.getLogger(__name__)


class References:
    """Reference lookup, creation and materialisation for one store.

    The few references in use (``HOT_REFERENCES``) stay decrypted in the store's private 0700 work directory
    for the life of the process, so consecutive uploads against one reference do not decrypt and re-hash it
    from the (encrypted) cache each time; callers get a hard link, so eviction never pulls a file from
    under a running encode.
    """

    def __init__(
        self,
        s3: S3,
        cache: ReferenceCache,
        tool: str,
        work_dir: Path,
        *,
        delta_extensions: frozenset[str] = frozenset(),
        allow_unconditional_writes: bool = False,
        logger: logging.Logger | None = None,
    ) -> None:
        self.log = logger or log  # the store's logger: a task logger given to the store hears these too
        self.s3 = s3
        self.delta_extensions = delta_extensions  # which file names are archives (stored as deltas unless poor)
        self.allow_unconditional_writes = allow_unconditional_writes
        self.cache = cache
        self.tool = tool
        self._hot_dir = work_dir / "hot"
        self._hot_dir.mkdir(mode=0o700, exist_ok=True)
        self._hot: OrderedDict[str, tuple[Path, int, int]] = OrderedDict()  # sha -> (path, size, mtime_ns)
        self._hot_lock = threading.Lock()
        self._newest: dict[tuple[str, str], Reference] = {}  # (bucket, deltaspace prefix) -> newest reference
        self._ledgers: dict[tuple[str, str], list[int]] = {}  # (bucket, reference key) -> delta sizes
        self._poor: dict[tuple[str, str], int] = {}  # (bucket, reference key) -> archives stored whole since
        self._state_lock = threading.Lock()

    def newest(self, loc: Location, *, fresh: bool = False) -> Reference | None:
        """The deltaspace's newest reference, remembered per store (references are immutable)."""
        with self._state_lock:
            known = None if fresh else self._newest.get((loc.bucket, loc.prefix))
        if known is not None:
            return known
        base = self.current(loc)
        if base is not None:
            self.remember(loc, base)
        return base

    def remember(self, loc: Location, base: Reference, *, created: bool = False) -> None:
        """Note ``base`` as the deltaspace's newest reference; one this store created starts an empty ledger."""
        with self._state_lock:
            known = self._newest.get((loc.bucket, loc.prefix))
            if known is None or base.generation >= known.generation:
                self._newest[(loc.bucket, loc.prefix)] = base
            if created:
                self._ledgers[(loc.bucket, base.key)] = []
                self._poor[(loc.bucket, base.key)] = 0

    def ledger(self, loc: Location, base: Reference) -> BaseHistory:
        """Delta sizes stored against ``base``: exact for what this store wrote, seeded once from S3."""
        self._seed(loc, base)
        with self._state_lock:
            return BaseHistory(tuple(self._ledgers[(loc.bucket, base.key)]))

    def poor_uploads(self, loc: Location, base: Reference) -> int:
        """Archives stored whole (poor deltas) since ``base`` was created: seeded once from S3, then counted."""
        self._seed(loc, base)
        with self._state_lock:
            return self._poor[(loc.bucket, base.key)]

    def note_poor(self, bucket: str, ref_key: str) -> None:
        with self._state_lock:
            if (bucket, ref_key) in self._poor:
                self._poor[(bucket, ref_key)] += 1

    def record(self, bucket: str, ref_key: str, delta_size: int) -> None:
        """Add a delta just stored against ``ref_key`` to its ledger."""
        with self._state_lock:
            ledger = self._ledgers.get((bucket, ref_key))
            if ledger is not None:
                ledger.append(delta_size)

    def _from_hot(self, sha256: str, dest: Path) -> bool:
        with self._hot_lock:
            entry = self._hot.get(sha256)
            if entry is None:
                return False
            path, size, mtime = entry
            try:
                stat = path.stat()
                if (stat.st_size, stat.st_mtime_ns) != (size, mtime):
                    raise OSError("changed since it was verified")
                os.link(path, dest)
            except OSError:
                self._hot.pop(sha256, None)
                path.unlink(missing_ok=True)
                return False
            self._hot.move_to_end(sha256)
        return True

    def _keep_hot(self, sha256: str, plain: Path) -> None:
        target = self._hot_dir / sha256
        with self._hot_lock:
            if sha256 in self._hot:
                return
            try:
                os.link(plain, target)
                stat = target.stat()
            except OSError:
                return  # another filesystem or already there: just do without
            self._hot[sha256] = (target, stat.st_size, stat.st_mtime_ns)
            while len(self._hot) > HOT_REFERENCES:
                _, (old, _, _) = self._hot.popitem(last=False)
                old.unlink(missing_ok=True)

    def head_base(self, bucket: str, key: str) -> Reference | None:
        head = self.s3.head(bucket, key)
        if head is None:
            return None
        sha = meta_get(head.metadata, "file-sha256")
        if sha is None:
            raise IntegrityError(
                f"Reference s3://{bucket}/{key} has no dg-file-sha256 metadata, so nothing read through it can "
                "be verified: it was not written by DeltaGlider. Move it away and re-upload the deltaspace."
            )
        generation = base_generation(key)
        return Reference(
            bucket,
            key,
            0 if generation is None else generation,
            sha,
            head.size,
            head.last_modified,
            meta_get(head.metadata, "source-name"),
        )

    def current(self, loc: Location) -> Reference | None:
        """The reference new deltas of this deltaspace are encoded against (the newest generation)."""
        newest: tuple[int, str] | None = None
        for page in self.s3.pages(loc.bucket, loc.bases_prefix):
            for obj in page.objects:
                generation = base_generation(obj.key)
                if generation and (newest is None or generation > newest[0]):
                    newest = (generation, obj.key)
        if newest is not None:
            found = self.head_base(loc.bucket, newest[1])
            if found is not None:
                return found
        return self.head_base(loc.bucket, loc.reference_key)

    def create(self, loc: Location, generation: int, path: Path, digest: FileDigest) -> Reference | None:
        """Write ``path`` as reference ``generation`` and remember it as the deltaspace's newest; None if another
        writer created it first.

        A generation whose key has a live entry in prune's trash is skipped: deltas may still name the trashed
        bytes by that key, and new bytes there would shadow them (prune.py). The next free generation is used.
        """
        self._require_conditional_writes(loc.bucket)
        while self.s3.head(loc.bucket, TRASH_PREFIX + loc.base_key(generation)) is not None:
            self.log.info(
                "reference s3://%s/%s waits in prune's trash: the new reference takes generation %d instead",
                loc.bucket, loc.base_key(generation), generation + 1,
            )  # fmt: skip
            generation += 1
        key = loc.base_key(generation)
        meta = reference_metadata(self.tool, loc.name, digest.sha256, digest.md5)
        # Content-MD5 from the digest: a server refuses bytes that changed since they were hashed.
        if self.s3.upload(path, loc.bucket, key, meta, if_none_match=True, digest=digest) is None:
            return None
        require_unchanged(path, digest, "while it was uploaded")
        self.cache.store(digest.sha256, path)  # not kept hot: ``path`` is the caller's file, never linked
        head = self.s3.head(loc.bucket, key)  # the server's LastModified starts this reference's history
        modified = head.last_modified if head is not None else None
        created = Reference(loc.bucket, key, generation, digest.sha256, digest.size, modified, loc.name)
        self.remember(loc, created, created=True)  # the deltaspace's newest now, with an empty ledger
        return created

    def _require_conditional_writes(self, bucket: str) -> None:
        """References rely on ``If-None-Match: *``: refuse (naming the gap and the setting) where it is ignored."""
        probe = f"{INTERNAL_DIR}/probe/conditional-{uuid.uuid4().hex}"
        if self.s3.honours_if_none_match(bucket, probe):
            return
        if self.allow_unconditional_writes:
            self.log.warning(
                "s3://%s ignores conditional writes (If-None-Match: *): references are written anyway because "
                "allow_unconditional_writes is set; two first uploads into one prefix at once could lose files",
                bucket,
            )
            return
        raise StorageError(
            f"s3://{bucket} ignores conditional writes (a second PUT with If-None-Match: * replaced the object "
            "instead of failing), so two first uploads into one prefix at the same time could overwrite each "
            "other's reference and lose files. Nothing was written. Use a server that honours conditional writes "
            "(AWS S3, SeaweedFS, recent MinIO), or accept the risk with allow_unconditional_writes=True "
            "(connection extra or DeltaStore argument) if only one task at a time writes to each prefix."
        )

    def restore(self, bucket: str, key: str, path: Path, sha256: str, source_name: str | None) -> str:
        """Make sure reference ``key`` holds the bytes ``sha256`` a delta was just encoded against.

        Returns ``"present"`` (it does), ``"restored"`` (it had vanished, e.g. a concurrent delete, and was put
        back from ``path`` with a conditional write) or ``"replaced"`` (another writer created a different
        reference at that key meanwhile: the delta must be encoded again against it).
        """
        head = self.s3.head(bucket, key)
        if head is None:
            meta = reference_metadata(self.tool, source_name or "", sha256, None)
            if self.s3.upload(path, bucket, key, meta, if_none_match=True) is not None:
                return "restored"
            head = self.s3.head(bucket, key)  # someone else was faster: whose bytes are these?
        if head is not None and meta_get(head.metadata, "file-sha256") not in (None, sha256):
            self.forget(bucket, key)
            return "replaced"
        return "present"

    def forget(self, bucket: str, ref_key: str) -> None:
        """Drop what this store remembers about a reference that was replaced under it."""
        with self._state_lock:
            for ident, base in list(self._newest.items()):
                if ident[0] == bucket and base.key == ref_key:
                    del self._newest[ident]
            self._ledgers.pop((bucket, ref_key), None)
            self._poor.pop((bucket, ref_key), None)

    def materialise(self, bucket: str, key: str, sha256: str | None, dest: Path) -> str:
        """Write the verified plaintext of reference ``key`` to ``dest``; return its SHA-256.

        ``dest`` is replaced, never written through: a path left from an earlier call may be a hard link to a
        decrypted reference that other encodes are reading.
        """
        dest.unlink(missing_ok=True)
        if sha256 and self._from_hot(sha256, dest):
            return sha256
        if sha256 and self.cache.fetch(sha256, dest):
            self._keep_hot(sha256, dest)
            return sha256
        source = key
        try:
            head = self.s3.download(bucket, key, dest)
        except NotFound as exc:
            # prune trashed it while a writer raced it; the next prune puts it back (prune.py)
            trashed = self._from_trash(bucket, key, sha256, dest, "is missing")
            if trashed is None:
                raise NotFound(
                    f"Reference s3://{bucket}/{key} is missing, so files stored as deltas against it cannot be "
                    "reconstructed. Restore it from a backup or version history, or re-upload those files."
                ) from exc
            head, source = trashed, TRASH_PREFIX + key
        expected = sha256 or meta_get(head.metadata, "file-sha256")
        actual = sha256_file(dest)
        # The key was re-created with other bytes while prune held the ones the delta names (prune.py):
        if (
            sha256 is not None
            and actual != sha256
            and source == key
            and self._from_trash(bucket, key, sha256, dest, "holds other bytes") is not None
        ):
            source, actual = TRASH_PREFIX + key, sha256_file(dest)
        if expected is not None and actual != expected:
            dest.unlink(missing_ok=True)
            raise IntegrityError(
                f"Reference s3://{bucket}/{source} is corrupt: SHA-256 {actual} does not match the recorded "
                f"{expected}. Restore the reference from a backup or version history."
            )
        self.cache.store(actual, dest)
        self._keep_hot(actual, dest)
        return actual

    def _from_trash(self, bucket: str, key: str, sha256: str | None, dest: Path, why: str) -> Head | None:
        """Fetch prune's trash copy of reference ``key`` into ``dest`` if there is one that records the bytes
        asked for (``sha256``; any if None); the caller verifies what was fetched."""
        try:
            head = self.s3.download(bucket, TRASH_PREFIX + key, dest)
        except NotFound:
            return None
        if sha256 is not None and meta_get(head.metadata, "file-sha256") not in (None, sha256):
            return None
        self.log.warning("reference s3://%s/%s %s: read from prune's trash (prune.py)", bucket, key, why)
        return head

    def _seed(self, loc: Location, base: Reference) -> None:
        """Seed both per-reference counts from one LIST of the deltaspace, unless this store knows them: the
        sizes of deltas stored since ``base`` was created (its own zero-diff excluded) and the number of
        archives stored whole since then.

        LastModified has one-second resolution, so objects written in the same second as the base may be
        counted; the store uses these only to seed its exact in-process counts.
        """
        ident = (loc.bucket, base.key)
        with self._state_lock:
            if ident in self._ledgers and ident in self._poor:
                return
        own = f"{loc.sibling(base.source_name)}{DELTA_SUFFIX}" if base.source_name else None
        sizes: list[int] = []
        poor = 0
        for page in self.s3.pages(loc.bucket, loc.children_prefix, delimiter="/"):
            for obj in page.objects:
                if base.last_modified is not None and obj.last_modified < base.last_modified:
                    continue
                if obj.key.endswith(DELTA_SUFFIX):
                    if obj.key != own:
                        sizes.append(obj.size)
                elif is_delta_eligible(obj.key.rpartition("/")[2], self.delta_extensions):
                    poor += 1
        with self._state_lock:
            self._ledgers.setdefault(ident, sizes)
            self._poor.setdefault(ident, poor)
