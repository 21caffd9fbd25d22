"""DeltaStore: put/get/head/list/delete/verify. Orchestration only; format details live in format.py."""

from __future__ import annotations

import atexit
import datetime as _dt
import functools
import hashlib
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from deltaglider_core import __version__
from deltaglider_core.codec.budget import budget_window, full_window
from deltaglider_core.codec.vcdiff import UnsupportedSecondary, write_identity
from deltaglider_core.codec.xdelta3 import Codec, default_codec
from deltaglider_core.content import delta as content_delta
from deltaglider_core.content import external as external_compression
from deltaglider_core.errors import BucketNotFound, CodecError, IntegrityError, InvalidLocation, NotFound, StorageError
from deltaglider_core.models import DeleteResult, GetResult, Kind, ObjectInfo, PutResult
from deltaglider_core.storage.cache import ReferenceCache, make_cache
from deltaglider_core.storage.config import StoreConfig, validate_max_ratio
from deltaglider_core.storage.format import (
    ZERO_DIFF_NOTE,
    Location,
    delta_metadata,
    direct_metadata,
    meta_get,
    meta_key,
    validate_bucket,
    validate_logical_key,
)
from deltaglider_core.storage.forms import Forms, Seen
from deltaglider_core.storage.listing import info_from_head, iter_objects
from deltaglider_core.storage.policy import (
    delta_is_poor,
    is_delta_eligible,
    reference_is_poor,
    should_rebase,
)
from deltaglider_core.storage.prune import DEFAULT_GRACE, PruneReport, prune
from deltaglider_core.storage.references import Base, References, scratch_dir
from deltaglider_core.support.digest import FileDigest, digest_file, sha256_file
from deltaglider_core.support.paths import new_file_mode, readable_file
from deltaglider_core.support.scratch import private_dir
from deltaglider_core.transport.endpoint import Endpoint
from deltaglider_core.transport.s3 import DEFAULT_PART_SIZE

TOOL = f"deltaglider/airflow-provider-{__version__}"
CONTENT_FIELDS = ("content-encoding", "gzip-rebuild", "zip-rebuild", "delta-compression")  # of content deltas
# What stock xdelta3 (DeltaGlider 6) decompresses itself before encoding/decoding: stored directly when
# deltaglider_compatible, since its decoder cannot apply a delta of the compressed bytes (docs/format.md).
EXTERNALLY_COMPRESSED = (".gz", ".tgz", ".bz2", ".tbz2", ".xz", ".txz")
SPACE_MARGIN = 64 << 20  # head room kept free on the temp filesystem beyond what an operation needs


class DeltaStore:
    """Delta-compressed artifact storage on S3, compatible with DeltaGlider 6 buckets.

    ``endpoint`` is an :class:`Endpoint` (a boto3 S3 client with its credentials and ``verify``, for the lighter
    transport of fast_http.py) or a bare boto3 client, which then goes through boto3 alone. ``config`` holds
    every setting (:class:`StoreConfig`); without one, :meth:`StoreConfig.from_env` reads the ``DG_*``
    variables. References are created with conditional writes; the server's support is probed once per bucket,
    and on a server that ignores them reference creation is refused unless ``allow_unconditional_writes``
    accepts the risk. ``cache``, ``codec`` and ``logger`` are injected collaborators: what the store is given
    belongs to the caller, what it makes itself it closes.
    """

    def __init__(
        self,
        endpoint: Endpoint | Any,
        config: StoreConfig | None = None,
        *,
        cache: ReferenceCache | None = None,
        codec: Codec | None = None,
        logger: logging.Logger | None = None,
    ) -> None:
        self.endpoint = Endpoint.of(endpoint)
        self.config = config = config if config is not None else StoreConfig.from_env()
        self._owns_cache = cache is None
        self.cache: ReferenceCache = (
            cache
            if cache is not None
            else make_cache(
                config.cache_backend,
                memory_size_mb=config.cache_memory_size_mb,
                disk_size_mb=config.cache_disk_size_mb,
                encryption_key=config.encryption_key,
            )
        )
        self._owns_codec = codec is None
        self.max_ratio = config.max_ratio
        self.delta_extensions = config.delta_extensions
        self.rebase = config.rebase
        self.deltaglider_compatible = config.deltaglider_compatible
        self.max_workers = config.max_workers
        self.memory_budget = config.memory_budget
        self.window = budget_window(self.memory_budget)  # xdelta3 source window the budget allows
        self.codec: Codec = codec or default_codec(
            workers=min(config.max_workers, os.cpu_count() or 1), budget=self.memory_budget
        )  # concurrent encodes/decodes on every core, all within the budget (codec_pool.py)
        part = min(DEFAULT_PART_SIZE, max(8 << 20, self.memory_budget // 16))  # one part in memory
        self.s3 = self.endpoint.open(multipart_threshold=config.multipart_threshold, part_size=part)
        self.log = logger or logging.getLogger(__name__)
        self._work = private_dir("work")  # swept by a later process if this one is killed
        self._cleanup = functools.partial(shutil.rmtree, self._work, True)
        atexit.register(self._cleanup)  # in case close() is never called
        self.refs = References(
            self.s3,
            self.cache,
            TOOL,
            self._work,
            eligible=lambda name: is_delta_eligible(name, self.delta_extensions),
            allow_unconditional_writes=config.allow_unconditional_writes,
            logger=self.log,
        )
        self.forms = Forms(self.s3, allow_unconditional_writes=config.allow_unconditional_writes, logger=self.log)
        self._side = ThreadPoolExecutor(max_workers=max(2, config.max_workers), thread_name_prefix="deltaglider-side")
        self._closed = False

    def sibling(self, endpoint: Endpoint | Any) -> DeltaStore:
        """A store on another endpoint with this one's settings, sharing its reference cache and codec (a
        migration reads its source through one). The caller closes it; closing it leaves the shared parts open."""
        return DeltaStore(endpoint, self.config, cache=self.cache, codec=self.codec, logger=self.log)

    def ensure_bucket(self, bucket: str) -> None:
        """Fail with :class:`BucketNotFound` naming ``bucket`` unless it exists and can be read."""
        self.s3.ensure_bucket(bucket)

    # ------------------------------------------------------------------ lifecycle
    def warm_up(self) -> None:
        """Parallel work is coming: start the codec worker processes now (see codec_pool.py), not on the first
        concurrent encode. Nothing happens with one worker or where processes cannot start."""
        warm = getattr(self.codec, "runner", None)
        start = getattr(warm, "warm", None)
        if start is not None:
            start()

    def close(self) -> None:
        """Release what the store opened: its thread pool, pooled connections, its private work directory
        (decrypted references) and the cache it made (a cache passed in belongs to the caller). Idempotent;
        the boto3 client belongs to the caller."""
        if self._closed:
            return
        self._closed = True
        self._side.shutdown(wait=True)
        self.s3.close()
        if self._owns_codec and hasattr(self.codec, "close"):
            self.codec.close()
        atexit.unregister(self._cleanup)
        self._cleanup()
        if self._owns_cache:
            self.cache.close()

    def __enter__(self) -> DeltaStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ writes
    def put(self, path: str | os.PathLike[str], bucket: str, key: str, *, max_ratio: float | None = None) -> PutResult:
        """Upload a local file as logical object ``key``: reference, delta or direct, as the policy says."""
        loc = validate_logical_key(bucket, key)
        source = readable_file(path)
        limit = validate_max_ratio(max_ratio) if max_ratio is not None else self.max_ratio
        self.s3.ensure_bucket(bucket)
        # The key's other form is noted before anything is written, while the file is hashed (forms.py).
        eligible = is_delta_eligible(loc.name, self.delta_extensions)
        if eligible and self.deltaglider_compatible and loc.name.lower().endswith(EXTERNALLY_COMPRESSED):
            eligible = False  # DeltaGlider's xdelta3 decompresses these on decode and cannot read our deltas
        seen = _Seen(
            whole=self._side.submit(self.forms.before, bucket, loc.key, shadows=False) if eligible else None,
            delta=self._side.submit(self.forms.before, bucket, loc.delta_key, shadows=True),
        )
        digest = digest_file(source)
        if not eligible:
            result = self._put_direct(source, loc, digest, seen)
        else:
            result = self._put_archive_again_if_replaced(source, loc, digest, limit, seen)
        self.log.info(
            "put s3://%s/%s kind=%s original=%d stored=%d ratio=%.4f",
            bucket, result.stored_key, result.kind, result.original_size, result.stored_size, result.ratio,
        )  # fmt: skip
        return result

    def _put_archive_again_if_replaced(
        self, source: Path, loc: Location, digest: FileDigest, limit: float, seen: _Seen
    ) -> PutResult:
        """Store an archive; if its reference was deleted and re-created with other bytes while the delta was
        being written, encode again against the new one (the delta key is overwritten), at most 3 times."""
        for attempt in range(3):
            with scratch_dir(self._work) as scratch:
                try:
                    return self._put_archive(source, loc, digest, limit, Path(scratch), seen)
                except _ReferenceReplaced as replaced:
                    self.log.warning(
                        "reference s3://%s/%s was replaced while s3://%s/%s was stored against it: encoding again "
                        "(attempt %d)", loc.bucket, replaced.key, loc.bucket, loc.key, attempt + 2,
                    )  # fmt: skip
        raise StorageError(
            f"s3://{loc.bucket}/{loc.key}: its reference kept being replaced by other writers while it was stored "
            "(3 attempts). Nothing was acknowledged; retry the upload."
        )

    def _put_archive(
        self, source: Path, loc: Location, digest: FileDigest, limit: float, scratch: Path, seen: _Seen
    ) -> PutResult:
        base = self.refs.newest(loc)
        if base is None:
            created = self.refs.create(loc, 0, source, digest)
            if created is not None:
                self.refs.remember(loc, created, created=True)
                return self._put_zero_diff(source, loc, digest, created, scratch, seen, rebased=False)
            base = self._require_base(loc)  # lost the race: encode against the winner's reference
        reference = scratch / "reference"
        delta = scratch / "delta"
        try:
            self.refs.materialise(loc.bucket, base.key, base.sha256, reference)
        except NotFound:
            base = self._require_base(loc)  # the cached reference was deleted: look again
            self.refs.materialise(loc.bucket, base.key, base.sha256, reference)
        self._require_space(base.size + digest.size, f"encoding s3://{loc.bucket}/{loc.key}")
        cmd, content = self._encode_best(reference, source, delta, base, scratch, limit)
        delta_size = delta.stat().st_size
        if delta_is_poor(delta_size, digest.size, limit):
            return self._put_poor(source, loc, digest, base, delta_size, limit, scratch, seen)
        if self.rebase and should_rebase(self.refs.ledger(loc, base), delta_size, digest.size):
            fresh = self.refs.create(loc, base.generation + 1, source, digest)
            if fresh is not None:
                self.refs.remember(loc, fresh, created=True)
                return self._put_zero_diff(source, loc, digest, fresh, scratch, seen, rebased=True)
            base = self._require_base(loc)
            self.refs.materialise(loc.bucket, base.key, base.sha256, reference)
            cmd, content = self._encode_best(reference, source, delta, base, scratch, limit)
        result = self._store_delta(source, loc, digest, base, reference, delta, cmd, None, seen, content)
        self.refs.record(loc.bucket, base.key, result.stored_size)
        if full_window(base.size) > self.window:  # encoded with less than the whole reference: say so
            result = replace(result, source_window=self.window)
        return result

    def _put_poor(
        self,
        source: Path,
        loc: Location,
        digest: FileDigest,
        base: Base,
        delta_size: int,
        limit: float,
        scratch: Path,
        seen: _Seen,
    ) -> PutResult:
        """A delta over ``max_ratio``: the file is stored whole, as a fresh reference if the current one
        cannot serve the deltaspace (see ``policy.reference_is_poor``), else directly."""
        good = len(self.refs.ledger(loc, base).delta_sizes)
        poor = self.refs.poor_uploads(loc, base)
        if self.rebase and reference_is_poor(base.size, digest.size, limit, good, poor):
            fresh = self.refs.create(loc, base.generation + 1, source, digest)
            if fresh is not None:
                self.log.info(
                    "reference s3://%s/%s serves no delta (%d poor upload(s), %d delta(s)): s3://%s/%s starts a "
                    "fresh one", loc.bucket, base.key, poor + 1, good, loc.bucket, loc.key,
                )  # fmt: skip
                self.refs.remember(loc, fresh, created=True)
                return self._put_zero_diff(source, loc, digest, fresh, scratch, seen, rebased=True)
        self.log.info(
            "delta for s3://%s/%s is %.1f%% of the file (max_ratio %.2f): storing it directly",
            loc.bucket, loc.key, 100 * delta_size / digest.size, limit,
        )  # fmt: skip
        self.refs.note_poor(loc.bucket, base.key)
        return self._put_direct(source, loc, digest, seen, delta_ratio=delta_size / digest.size)

    def _encode_best(
        self, reference: Path, source: Path, delta: Path, base: Base, scratch: Path, limit: float
    ) -> tuple[str, dict[str, str] | None]:
        """The byte-level delta, or, for a gzip file or a zip container (unless DeltaGlider-compatible), the
        delta of the decompressed contents when it is clearly smaller and the original rebuilds exactly
        (content_delta.py). Returns the command and the content encoding's metadata (None: byte-level)."""
        cmd = self._encode(reference, source, delta, base)
        size = delta.stat().st_size
        if self.deltaglider_compatible or not content_delta.worth_trying(size, source.stat().st_size):
            return cmd, None

        def encode_with(r: Path, t: Path, d: Path, *, quick: bool = False) -> str:
            return self.codec.encode(r, t, d, content_delta.window(r.stat().st_size, self.window), quick=quick)

        content = content_delta.encode(reference, source, scratch, encode_with, self._side, self.log)
        if content is None:
            return cmd, None
        content = content_delta.squeeze(content)
        if not content_delta.better(content, size):
            return cmd, None
        content.delta.replace(delta)
        return content.command, content.metadata

    def _encode(self, reference: Path, source: Path, delta: Path, base: Base) -> str:
        """Encode within the memory budget: the reference's whole size as source window, or what fits."""
        if full_window(base.size) > self.window:
            self.log.info(
                "reference s3://%s/%s (%d MB) is larger than memory_budget_mb=%d allows for a whole-file source "
                "window: encoding with a %d MiB window (a poor delta is then stored directly)",
                base.bucket, base.key, base.size >> 20, self.memory_budget >> 20, self.window >> 20,
            )  # fmt: skip
        return self.codec.encode(reference, source, delta, self.window)

    def _require_space(self, needed: int, what: str) -> None:
        """Refuse before starting when the work directory's filesystem lacks ``needed`` bytes."""
        free = shutil.disk_usage(self._work).free
        if free < needed + SPACE_MARGIN:
            raise StorageError(
                f"Not enough temporary disk space for {what}: it needs about {(needed + SPACE_MARGIN) >> 20} MB "
                f"in {self._work.parent} ({free >> 20} MB free). Nothing was written. Point TMPDIR at a larger disk "
                "or free some space."
            )

    def _require_base(self, loc: Location) -> Base:
        base = self.refs.newest(loc, fresh=True)
        if base is None:
            raise NotFound(
                f"Reference for s3://{loc.bucket}/{loc.children_prefix} disappeared during the upload of "
                f"{loc.name} (deleted concurrently?). Retry the upload."
            )
        return base

    def _put_zero_diff(
        self, source: Path, loc: Location, digest: FileDigest, base: Base, scratch: Path, seen: _Seen, *, rebased: bool
    ) -> PutResult:
        delta = scratch / "delta"
        if digest.size:  # the delta of a file against itself, written directly: no encode, no memory
            write_identity(digest.size, delta)
            cmd = "vcdiff-identity"
        else:
            cmd = self.codec.encode(source, source, delta)
        result = self._store_delta(source, loc, digest, base, source, delta, cmd, ZERO_DIFF_NOTE, seen)
        return replace(
            result,
            kind="reference",
            stored_size=result.stored_size + digest.size,
            reference_created=True,
            rebased=rebased,
        )

    def _store_delta(
        self,
        source: Path,
        loc: Location,
        digest: FileDigest,
        base: Base,
        reference: Path,
        delta: Path,
        cmd: str,
        note: str | None,
        seen: _Seen,
        content: Mapping[str, str] | None = None,
    ) -> PutResult:
        """Write the delta object, remove the whole copy of the key seen before, make sure the reference exists."""
        delta_size = delta.stat().st_size
        meta = delta_metadata(
            TOOL,
            original_name=loc.name,
            sha256=digest.sha256,
            size=digest.size,
            md5=digest.md5,
            ref_key=base.key,
            ref_sha256=base.sha256,
            delta_size=delta_size,
            delta_cmd=f"{cmd} -s {base.key.rpartition('/')[2]} {loc.name} {loc.name}.delta",
            note=note,
        )
        for name, value in (content or {}).items():  # a delta of decompressed contents: how to rebuild the file
            meta[meta_key(name)] = value
        whole = seen.whole.result() if seen.whole is not None else Seen(loc.key, None)
        self.s3.upload(delta, loc.bucket, loc.delta_key, meta)
        # Both after the write, side by side: drop the whole copy of the same logical key seen before it
        # (forms.py), and make sure the reference this delta needs still exists (a concurrent delete may
        # have removed it).
        dropped = self._side.submit(self.forms.after, loc.bucket, whole)
        state = self.refs.restore(loc.bucket, base.key, reference, base.sha256, base.source_name)
        dropped.result()
        if state == "restored":
            self.log.warning("reference s3://%s/%s vanished during the upload and was restored", loc.bucket, base.key)
        elif state == "replaced":  # deleted and re-created by another writer: this delta no longer decodes
            raise _ReferenceReplaced(base.key)
        return PutResult(
            bucket=loc.bucket,
            key=loc.key,
            stored_key=loc.delta_key,
            kind="delta",
            original_size=digest.size,
            stored_size=delta_size,
            sha256=digest.sha256,
            ref_key=base.key,
            delta_ratio=delta_size / digest.size if digest.size else 0.0,
        )

    def _put_direct(
        self,
        source: Path,
        loc: Location,
        digest: FileDigest,
        seen: _Seen,
        *,
        delta_ratio: float | None = None,
    ) -> PutResult:
        meta = direct_metadata(TOOL, original_name=loc.name, sha256=digest.sha256, size=digest.size, md5=digest.md5)
        delta = seen.delta.result()  # raises, before anything is written, where the delta cannot go safely
        self.s3.upload(source, loc.bucket, loc.key, meta)
        self.forms.after(loc.bucket, delta)
        return PutResult(
            bucket=loc.bucket,
            key=loc.key,
            stored_key=loc.key,
            kind="direct",
            original_size=digest.size,
            stored_size=digest.size,
            sha256=digest.sha256,
            delta_ratio=delta_ratio,
        )

    def write_group(self, bucket: str, key: str) -> str:
        """What writes of ``key`` must be serialised with: its deltaspace for an archive (one reference, uploads
        in order), else the key alone. Used to run many files' puts in parallel (:mod:`.parallel`)."""
        loc = Location(bucket, key)
        return f"space:{loc.prefix}" if is_delta_eligible(loc.name, self.delta_extensions) else f"key:{key}"

    # ------------------------------------------------------------------ reads
    def get(self, bucket: str, key: str, dest: str | os.PathLike[str]) -> GetResult:
        """Download ``key`` to ``dest`` (a file path, or an existing directory), verified by SHA-256.

        The bytes are written to a temporary file beside the destination and renamed into place only
        after verification, so a failed read never leaves a partial or wrong file behind.
        """
        loc = validate_logical_key(bucket, key)
        target = _destination(Path(dest), loc.name)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".dg-part", dir=target.parent)
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            result = self._read_into(loc, tmp)
            os.chmod(tmp, new_file_mode())  # mkstemp made it 0600; the file gets the usual umask-based mode
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
        return replace(result, path=str(target))

    def verify(self, bucket: str, key: str) -> GetResult:
        """Reconstruct ``key`` in a scratch directory and check its SHA-256; nothing is kept."""
        loc = validate_logical_key(bucket, key)
        with scratch_dir(self._work) as scratch:
            return self._read_into(loc, Path(scratch) / "verify")

    def _read_into(self, loc: Location, out: Path) -> GetResult:
        with scratch_dir(self._work) as scratch_name:
            scratch = Path(scratch_name)
            delta = scratch / "delta"
            try:
                head = self.s3.download(loc.bucket, loc.delta_key, delta)
            except BucketNotFound:
                raise
            except NotFound:
                return self._read_as_is(loc, out)
            meta = head.metadata
            ref_key = meta_get(meta, "ref-key") or loc.reference_key
            expected = meta_get(meta, "file-sha256")
            reference = scratch / "reference"
            size_text = meta_get(meta, "file-size") or "0"
            self._require_space(int(size_text) if size_text.isdigit() else 0, f"reading s3://{loc.bucket}/{loc.key}")
            self.refs.materialise(loc.bucket, ref_key, meta_get(meta, "ref-sha256"), reference)
            if meta_get(meta, "content-encoding") is not None:
                return self._read_content_delta(loc, ref_key, meta, reference, delta, out, scratch)
            external = external_compression.declared(delta)
            if external is not None:
                return self._read_external(loc, ref_key, external, meta, reference, delta, out, scratch)
            self._decode(loc, reference, delta, out, f"s3://{loc.bucket}/{ref_key}")
            actual = sha256_file(out)
            _check_hash(self.log, loc, loc.delta_key, expected, actual)
            size = out.stat().st_size
            return GetResult(loc.bucket, loc.key, loc.delta_key, "delta", str(out), size, actual, expected is not None)

    def _decode(self, loc: Location, source: Path, delta: Path, out: Path, against: str) -> None:
        """Apply the delta of ``loc``; a failure names the delta and what it was decoded ``against``."""
        try:
            self.codec.decode(source, delta, out, self.window)
        except UnsupportedSecondary as exc:
            raise CodecError(f"s3://{loc.bucket}/{loc.delta_key} cannot be read here: {exc}") from exc
        except CodecError as exc:
            raise IntegrityError(
                f"s3://{loc.bucket}/{loc.delta_key} cannot be decoded against {against}: the delta is corrupt or "
                "belongs to another reference. Re-upload the file."
            ) from exc

    def _read_content_delta(
        self, loc: Location, ref_key: str, meta: Mapping[str, str], reference: Path, delta: Path, out: Path,
        scratch: Path,
    ) -> GetResult:  # fmt: skip
        """A delta of decompressed contents (content_delta.py): rebuilt into ``out`` (get()'s temp file, renamed
        into place only once verified), then the SHA-256 checked."""
        where = f"s3://{loc.bucket}/{loc.delta_key}"
        fields = {n: v for n in CONTENT_FIELDS if (v := meta_get(meta, n)) is not None}
        why = content_delta.rebuild(
            where, f"s3://{loc.bucket}/{ref_key}", fields, reference, delta, out, scratch,
            lambda src, d, o, against: self._decode(loc, src, d, o, against),
        )  # fmt: skip
        return self._rebuilt(loc, meta, out, why)

    def _read_external(
        self,
        loc: Location,
        ref_key: str,
        external: external_compression.ExternalCompression,
        meta: Mapping[str, str],
        reference: Path,
        delta: Path,
        out: Path,
        scratch: Path,
    ) -> GetResult:
        """A delta stock xdelta3 took between decompressed contents (external_compression.py): decompress the
        reference, apply, recompress with the program stock xdelta3 runs, check the SHA-256."""
        where = f"s3://{loc.bucket}/{loc.delta_key}"
        source, against = reference, f"s3://{loc.bucket}/{ref_key}"
        if external.source is not None:
            source, against = scratch / "reference.content", f"the decompressed s3://{loc.bucket}/{ref_key}"
            external_compression.decompress(external.source, reference, source, where)
        target = out if external.target is None else scratch / "content"
        self._decode(loc, source, delta, target, against)
        if external.target is not None:
            external_compression.recompress(external.target, target, out, where)
        return self._rebuilt(loc, meta, out, external_compression.mismatch_message(external))

    def _rebuilt(self, loc: Location, meta: Mapping[str, str], out: Path, why: str) -> GetResult:
        """Check a file rebuilt from decompressed contents against its SHA-256; a mismatch names ``why`` it can
        differ (what recompressed it)."""
        expected = meta_get(meta, "file-sha256")
        actual = sha256_file(out)
        if expected is not None and actual != expected:
            raise IntegrityError(
                f"s3://{loc.bucket}/{loc.delta_key}: the rebuilt file does not match its SHA-256 ({actual}, expected "
                f"{expected}): {why}. Nothing was written."
            )
        _check_hash(self.log, loc, loc.delta_key, expected, actual)
        verified = expected is not None
        return GetResult(loc.bucket, loc.key, loc.delta_key, "delta", str(out), out.stat().st_size, actual, verified)

    def _read_as_is(self, loc: Location, out: Path) -> GetResult:
        sha = hashlib.sha256()
        try:
            head = self.s3.download(loc.bucket, loc.key, out, on_chunk=sha.update)
        except BucketNotFound:
            raise
        except NotFound as exc:
            raise NotFound(
                f"s3://{loc.bucket}/{loc.key} does not exist (neither as a delta nor as a plain object): "
                "check the key and list the prefix."
            ) from exc
        expected = meta_get(head.metadata, "file-sha256")
        actual = sha.hexdigest()
        _check_hash(self.log, loc, loc.key, expected, actual)
        kind: Kind = "direct" if expected else "regular"
        return GetResult(loc.bucket, loc.key, loc.key, kind, str(out), head.size, actual, expected is not None)

    def head(self, bucket: str, key: str) -> ObjectInfo:
        """Metadata of logical object ``key``, whichever way it is stored."""
        loc = validate_logical_key(bucket, key)
        for stored in (loc.delta_key, loc.key):
            found = self.s3.head(bucket, stored)
            if found is not None:
                return info_from_head(bucket, key, found)
        self.s3.ensure_bucket(bucket)
        raise NotFound(f"s3://{bucket}/{key} does not exist: check the key and list the prefix.")

    def list(
        self,
        bucket: str,
        prefix: str = "",
        *,
        recursive: bool = True,
        with_metadata: bool = True,
        start_after: str | None = None,
    ) -> Iterator[ObjectInfo]:
        """Logical objects under ``prefix`` in key order. See :mod:`deltaglider_core.storage.listing`."""
        validate_bucket(bucket)
        self.s3.ensure_bucket(bucket)
        return iter_objects(
            self.s3,
            bucket,
            prefix,
            recursive=recursive,
            with_metadata=with_metadata,
            start_after=start_after,
            max_workers=self.max_workers,
        )

    # ------------------------------------------------------------------ delete
    def delete(self, bucket: str, key: str) -> DeleteResult:
        """Delete logical object ``key``. Its reference stays, even if no delta names it any more: a writer may
        be storing a delta against it at this moment. :func:`deltaglider_core.storage.prune.prune` removes unneeded
        references safely, a grace period later (docs/format.md, "Concurrency protocol")."""
        info = self.head(bucket, key)
        self.s3.delete(bucket, info.stored_key)
        return DeleteResult(bucket, key, (info.stored_key,), False)

    def prune(
        self, bucket: str, prefix: str = "", *, grace: _dt.timedelta | None = None, dry_run: bool = False
    ) -> PruneReport:
        """Remove references no delta names (older than ``grace``, default 24 h); see :mod:`.prune`."""
        validate_bucket(bucket)
        return prune(
            self.s3, bucket, prefix, grace=DEFAULT_GRACE if grace is None else grace, dry_run=dry_run,
            workers=self.max_workers,
        )  # fmt: skip


@dataclass(frozen=True)
class _Seen:
    """A put's notes of the key's other forms, taken before it writes anything (see forms.py)."""

    whole: Future[Seen] | None
    delta: Future[Seen]


class _ReferenceReplaced(Exception):
    """Internal: the reference a delta was just written against was replaced by other bytes."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _destination(dest: Path, name: str) -> Path:
    target = dest / name if dest.is_dir() else dest
    if not target.parent.is_dir():
        raise InvalidLocation(
            f"Destination directory {str(target.parent)!r} does not exist: create it or choose another path."
        )
    return target


def _check_hash(log: logging.Logger, loc: Location, stored_key: str, expected: str | None, actual: str) -> None:
    if expected is None:
        log.warning(
            "s3://%s/%s has no recorded SHA-256 (dg-file-sha256), so it was read without verification",
            loc.bucket, stored_key,
        )  # fmt: skip
        return
    if expected != actual:
        raise IntegrityError(
            f"s3://{loc.bucket}/{stored_key} failed verification: SHA-256 of the reconstructed file is {actual}, "
            f"expected {expected}. Nothing was written; the stored object or its reference is corrupt."
        )
