"""The write path: one put, from a local file to a reference, a delta or a direct object.

Read top to bottom: :meth:`WritePath.put` notes what the key's other forms hold (forms.py) while it hashes the
file, then stores it directly (not an archive) or as an archive. An archive becomes the deltaspace's first
reference (with a zero-diff delta), or a delta against the newest reference; a poor delta makes a fresh
reference when the current one serves nothing, else the file is stored directly; a delta that drifted far
enough re-bases (policy.py). One :class:`Upload` value carries the put through these steps. A reference
replaced by another writer while the delta was written sends the put round again (at most 3 times).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from concurrent.futures import Future
from dataclasses import dataclass, replace
from pathlib import Path

from deltaglider_core.codec.budget import full_window
from deltaglider_core.codec.vcdiff import write_identity
from deltaglider_core.content import delta as content_delta
from deltaglider_core.errors import NotFound, StorageError
from deltaglider_core.models import PutResult
from deltaglider_core.storage.config import validate_max_ratio
from deltaglider_core.storage.format import (
    ZERO_DIFF_NOTE,
    Location,
    delta_metadata,
    direct_metadata,
    meta_key,
    validate_logical_key,
)
from deltaglider_core.storage.forms import Seen
from deltaglider_core.storage.parts import TOOL, StoreParts
from deltaglider_core.storage.policy import delta_is_poor, is_delta_eligible, reference_is_poor, should_rebase
from deltaglider_core.storage.references import Reference
from deltaglider_core.support.digest import FileDigest, digest_file, require_unchanged
from deltaglider_core.support.paths import readable_file
from deltaglider_core.support.scratch import scratch_dir

# What stock xdelta3 (DeltaGlider 6) decompresses itself before encoding/decoding: stored directly when
# deltaglider_compatible, since its decoder cannot apply a delta of the compressed bytes (docs/format.md).
EXTERNALLY_COMPRESSED = (".gz", ".tgz", ".bz2", ".tbz2", ".xz", ".txz")
ATTEMPTS = 3  # encodes of one archive when its reference keeps being replaced under it


@dataclass(frozen=True)
class OtherForms:
    """A put's notes of the key's other forms, taken before it writes anything (see forms.py)."""

    whole: Future[Seen] | None
    delta: Future[Seen]


@dataclass(frozen=True)
class Upload:
    """One put as it travels down the write path."""

    source: Path
    loc: Location
    digest: FileDigest
    limit: float  # this put's max_ratio
    forms: OtherForms
    scratch: Path | None = None  # this attempt's scratch directory (archives only)

    @property
    def work(self) -> Path:
        if self.scratch is None:
            raise RuntimeError(f"{self.loc.key}: an archive's upload runs in a scratch directory")
        return self.scratch


class ReferenceReplaced(Exception):
    """Internal: the reference a delta was just written against was replaced by other bytes."""

    def __init__(self, key: str, delta: Seen) -> None:
        super().__init__(key)
        self.key = key
        self.delta = delta  # the delta just written (key and ETag): removed if the put gives up


class WritePath(StoreParts):
    """The store's writes (see the module docstring)."""

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
        forms = OtherForms(
            whole=self._side.submit(self.forms.before, bucket, loc.key, shadows=False) if eligible else None,
            delta=self._side.submit(self.forms.before, bucket, loc.delta_key, shadows=True),
        )
        upload = Upload(source, loc, digest_file(source, self.s3.part_size_for), limit, forms)
        result = self._put_archive_again_if_replaced(upload) if eligible else self._put_direct(upload)
        self.log.info(
            "put s3://%s/%s kind=%s original=%d stored=%d ratio=%.4f",
            bucket, result.stored_key, result.kind, result.original_size, result.stored_size, result.ratio,
        )  # fmt: skip
        return result

    def write_group(self, bucket: str, key: str) -> str:
        """What writes of ``key`` must be serialised with: its deltaspace for an archive (one reference, uploads
        in order), else the key alone. Used to run many files' puts in parallel (support/parallel.py)."""
        loc = Location(bucket, key)
        return f"space:{loc.prefix}" if is_delta_eligible(loc.name, self.delta_extensions) else f"key:{key}"

    def _put_archive_again_if_replaced(self, upload: Upload) -> PutResult:
        """Store an archive; if its reference was deleted and re-created with other bytes while the delta was
        being written, encode again against the new one (the delta key is overwritten), at most 3 times."""
        loc = upload.loc
        for attempt in range(ATTEMPTS):
            with scratch_dir(self._work) as scratch:
                try:
                    return self._put_archive(replace(upload, scratch=Path(scratch)))
                except ReferenceReplaced as replaced:
                    if attempt + 1 == ATTEMPTS:
                        # Giving up: the delta just written names bytes that are gone, and readers take a delta
                        # before a whole copy. Remove it (if it is still ours) so the key's whole copy, kept
                        # because the put never got that far, reads as before.
                        self.forms.after(loc.bucket, replaced.delta)
                        break
                    self.log.warning(
                        "reference s3://%s/%s was replaced while s3://%s/%s was stored against it: encoding again "
                        "(attempt %d)", loc.bucket, replaced.key, loc.bucket, loc.key, attempt + 2,
                    )  # fmt: skip
        raise StorageError(
            f"s3://{loc.bucket}/{loc.key}: its reference kept being replaced by other writers while it was stored "
            f"({ATTEMPTS} attempts). Nothing was acknowledged; retry the upload."
        )

    def _put_archive(self, upload: Upload) -> PutResult:
        loc, digest = upload.loc, upload.digest
        ref = self.refs.newest(loc)
        if ref is None:
            created = self.refs.create(loc, 0, upload.source, digest)
            if created is not None:
                return self._put_zero_diff(upload, created, rebased=False)
            ref = self._require_reference(loc)  # lost the race: encode against the winner's reference
        reference = upload.work / "reference"
        delta = upload.work / "delta"
        try:
            self.refs.materialise(loc.bucket, ref.key, ref.sha256, reference)
        except NotFound:
            ref = self._require_reference(loc)  # the cached reference was deleted: look again
            self.refs.materialise(loc.bucket, ref.key, ref.sha256, reference)
        self._require_space(ref.size + digest.size, f"encoding s3://{loc.bucket}/{loc.key}")
        cmd, content = self._encode_best(upload, reference, delta, ref)
        delta_size = delta.stat().st_size
        if delta_is_poor(delta_size, digest.size, upload.limit):
            return self._put_poor(upload, ref, delta_size)
        if self.rebase and should_rebase(self.refs.ledger(loc, ref), delta_size, digest.size):
            fresh = self.refs.create(loc, ref.generation + 1, upload.source, digest)
            if fresh is not None:
                return self._put_zero_diff(upload, fresh, rebased=True)
            ref = self._require_reference(loc)
            self.refs.materialise(loc.bucket, ref.key, ref.sha256, reference)
            cmd, content = self._encode_best(upload, reference, delta, ref)
        result = self._store_delta(upload, ref, reference, delta, cmd, None, content)
        self.refs.record(loc.bucket, ref.key, result.stored_size)
        if full_window(ref.size) > self.window:  # encoded with less than the whole reference: say so
            result = replace(result, source_window=self.window)
        return result

    def _put_poor(self, upload: Upload, ref: Reference, delta_size: int) -> PutResult:
        """A delta over ``max_ratio``: the file is stored whole, as a fresh reference if the current one
        cannot serve the deltaspace (see ``policy.reference_is_poor``), else directly."""
        loc, digest = upload.loc, upload.digest
        good = len(self.refs.ledger(loc, ref).delta_sizes)
        poor = self.refs.poor_uploads(loc, ref)
        if self.rebase and reference_is_poor(ref.size, digest.size, upload.limit, good, poor):
            fresh = self.refs.create(loc, ref.generation + 1, upload.source, digest)
            if fresh is not None:
                self.log.info(
                    "reference s3://%s/%s serves no delta (%d poor upload(s), %d delta(s)): s3://%s/%s starts a "
                    "fresh one", loc.bucket, ref.key, poor + 1, good, loc.bucket, loc.key,
                )  # fmt: skip
                return self._put_zero_diff(upload, fresh, rebased=True)
        self.log.info(
            "delta for s3://%s/%s is %.1f%% of the file (max_ratio %.2f): storing it directly",
            loc.bucket, loc.key, 100 * delta_size / digest.size, upload.limit,
        )  # fmt: skip
        self.refs.note_poor(loc.bucket, ref.key)
        return self._put_direct(upload, delta_ratio=delta_size / digest.size)

    def _encode_best(
        self, upload: Upload, reference: Path, delta: Path, ref: Reference
    ) -> tuple[str, dict[str, str] | None]:
        """The byte-level delta, or, for a gzip file or a zip container (unless DeltaGlider-compatible), the
        delta of the decompressed contents when it is clearly smaller and the original rebuilds exactly
        (content/delta.py). Returns the command and the content encoding's metadata (None: byte-level)."""
        cmd = self._encode(reference, upload.source, delta, ref)
        size = delta.stat().st_size
        if self.deltaglider_compatible or not content_delta.worth_trying(size, upload.source.stat().st_size):
            return cmd, None

        def encode_with(r: Path, t: Path, d: Path, *, quick: bool = False) -> str:
            return self.codec.encode(r, t, d, content_delta.window(r.stat().st_size, self.window), quick=quick)

        content = content_delta.encode(reference, upload.source, upload.work, encode_with, self._side, self.log)
        if content is None:
            return cmd, None
        content = content_delta.squeeze(content)
        if not content_delta.better(content, size):
            return cmd, None
        content.delta.replace(delta)
        return content.command, content.metadata

    def _encode(self, reference: Path, source: Path, delta: Path, ref: Reference) -> str:
        """Encode within the memory budget: the reference's whole size as source window, or what fits."""
        if full_window(ref.size) > self.window:
            self.log.info(
                "reference s3://%s/%s (%d MB) is larger than memory_budget_mb=%d allows for a whole-file source "
                "window: encoding with a %d MiB window (a poor delta is then stored directly)",
                ref.bucket, ref.key, ref.size >> 20, self.memory_budget >> 20, self.window >> 20,
            )  # fmt: skip
        return self.codec.encode(reference, source, delta, self.window)

    def _require_reference(self, loc: Location) -> Reference:
        ref = self.refs.newest(loc, fresh=True)
        if ref is None:
            raise NotFound(
                f"Reference for s3://{loc.bucket}/{loc.children_prefix} disappeared during the upload of "
                f"{loc.name} (deleted concurrently?). Retry the upload."
            )
        return ref

    def _put_zero_diff(self, upload: Upload, ref: Reference, *, rebased: bool) -> PutResult:
        delta = upload.work / "delta"
        size = upload.digest.size
        if size:  # the delta of a file against itself, written directly: no encode, no memory
            write_identity(size, delta)
            cmd = "vcdiff-identity"
        else:
            cmd = self.codec.encode(upload.source, upload.source, delta)
        result = self._store_delta(upload, ref, upload.source, delta, cmd, ZERO_DIFF_NOTE)
        return replace(
            result, kind="reference", stored_size=result.stored_size + size, reference_created=True, rebased=rebased
        )

    def _store_delta(
        self,
        upload: Upload,
        ref: Reference,
        reference: Path,
        delta: Path,
        cmd: str,
        note: str | None,
        content: Mapping[str, str] | None = None,
    ) -> PutResult:
        """Write the delta object, remove the whole copy of the key seen before, make sure the reference exists."""
        loc, digest = upload.loc, upload.digest
        delta_size = delta.stat().st_size
        meta = delta_metadata(
            TOOL,
            original_name=loc.name,
            sha256=digest.sha256,
            size=digest.size,
            md5=digest.md5,
            ref_key=ref.key,
            ref_sha256=ref.sha256,
            delta_size=delta_size,
            delta_cmd=f"{cmd} -s {ref.key.rpartition('/')[2]} {loc.name} {loc.name}.delta",
            note=note,
        )
        for name, value in (content or {}).items():  # a delta of decompressed contents: how to rebuild the file
            meta[meta_key(name)] = value
        whole = upload.forms.whole.result() if upload.forms.whole is not None else Seen(loc.key, None)
        # The delta was encoded from the file as it is now: it must still be the file that was hashed.
        require_unchanged(upload.source, digest, "while it was encoded")
        etag = self.s3.upload(delta, loc.bucket, loc.delta_key, meta)
        # After the write: make sure the reference this delta needs still exists (a concurrent delete may have
        # removed it), and only then drop the whole copy of the same logical key seen before it (forms.py): a
        # delta that no longer decodes must never have cost the key its readable copy.
        state = self.refs.restore(loc.bucket, ref.key, reference, ref.sha256, ref.source_name)
        if state == "replaced":  # deleted and re-created by another writer: this delta no longer decodes
            raise ReferenceReplaced(ref.key, self.forms.noted(loc.bucket, loc.delta_key, etag))
        if state == "restored":
            self.log.warning("reference s3://%s/%s vanished during the upload and was restored", loc.bucket, ref.key)
        self.forms.after(loc.bucket, whole)
        return PutResult(
            bucket=loc.bucket,
            key=loc.key,
            stored_key=loc.delta_key,
            kind="delta",
            original_size=digest.size,
            stored_size=delta_size,
            sha256=digest.sha256,
            ref_key=ref.key,
            delta_ratio=delta_size / digest.size if digest.size else 0.0,
        )

    def _put_direct(self, upload: Upload, *, delta_ratio: float | None = None) -> PutResult:
        loc, digest = upload.loc, upload.digest
        meta = direct_metadata(TOOL, original_name=loc.name, sha256=digest.sha256, size=digest.size, md5=digest.md5)
        delta = upload.forms.delta.result()  # raises before any write where the delta cannot go safely
        self.s3.upload(upload.source, loc.bucket, loc.key, meta, digest=digest)  # Content-MD5: as hashed
        require_unchanged(upload.source, digest, "while it was uploaded")
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
