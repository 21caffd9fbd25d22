"""The read path: a logical object back from S3 into a local file, verified by SHA-256.

:meth:`ReadPath.get` reads into a temporary file beside the destination and renames it into place only once
verified. The object is a delta (decoded against its reference; a delta of decompressed contents is rebuilt,
content/delta.py; one stock xdelta3 took between decompressed contents is recompressed, content/external.py)
or a plain object read as it is.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from deltaglider_core.codec.pool import WorkerDied
from deltaglider_core.codec.vcdiff import UnsupportedSecondary, shape
from deltaglider_core.codec.xdelta3 import OutputTooLarge
from deltaglider_core.content import delta as content_delta
from deltaglider_core.content import external as external_compression
from deltaglider_core.errors import BucketNotFound, CodecError, IntegrityError, InvalidLocation, NotFound
from deltaglider_core.models import GetResult, Kind
from deltaglider_core.storage.format import Location, meta_get, validate_logical_key
from deltaglider_core.storage.parts import StoreParts
from deltaglider_core.support.digest import sha256_file
from deltaglider_core.support.limits import ReadBudget, byte_count
from deltaglider_core.support.paths import new_file_mode
from deltaglider_core.support.scratch import scratch_dir

CONTENT_FIELDS = (
    "content-encoding",
    "gzip-rebuild",
    "zip-rebuild",
    "delta-compression",
    "source-size",
)  # of content deltas


class ReadPath(StoreParts):
    """The store's reads (see the module docstring)."""

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
            declared = _declared_size(loc, meta)
            self._require_space(declared or 0, f"reading s3://{loc.bucket}/{loc.key}")
            self.refs.materialise(loc.bucket, ref_key, meta_get(meta, "ref-sha256"), reference)
            if expected is None and self.strict:  # refused before any decode
                _check_hash(self.log, self.strict, loc, loc.delta_key, expected, "")
            budget = ReadBudget(
                f"s3://{loc.bucket}/{loc.delta_key}", declared, byte_count(meta_get(meta, "content-size"))
            )
            if meta_get(meta, "content-encoding") is not None:
                return self._read_content_delta(loc, ref_key, meta, reference, delta, out, scratch, budget)
            external = external_compression.declared(delta)
            if external is not None:
                return self._read_external(loc, ref_key, external, meta, reference, delta, out, scratch, budget)
            self._decode(loc, reference, delta, out, f"s3://{loc.bucket}/{ref_key}", budget.file, budget)
            actual = sha256_file(out)
            _check_hash(self.log, self.strict, loc, loc.delta_key, expected, actual)
            size = out.stat().st_size
            return GetResult(loc.bucket, loc.key, loc.delta_key, "delta", str(out), size, actual, expected is not None)

    def _decode(
        self, loc: Location, source: Path, delta: Path, out: Path, against: str, limit: int | None, budget: ReadBudget
    ) -> None:
        """Apply the delta of ``loc`` into at most ``limit`` bytes (None: what free space allows); a failure names
        the delta and what it was decoded ``against``."""
        try:
            if limit is None:  # no declared size: the delta's own declaration must fit the disk
                self._require_space(shape(delta).target_size, f"reading s3://{loc.bucket}/{loc.key}")
            self.codec.decode(source, delta, out, self.window, limit=limit)
        except OutputTooLarge as exc:
            raise budget.exceeded(f"its delta ({exc.declared} bytes declared)", exc.limit) from exc
        except WorkerDied:
            raise  # the worker process, not the delta (the error says what happened to it)
        except UnsupportedSecondary as exc:
            raise CodecError(f"s3://{loc.bucket}/{loc.delta_key} cannot be read here: {exc}") from exc
        except CodecError as exc:
            raise IntegrityError(
                f"s3://{loc.bucket}/{loc.delta_key} cannot be decoded against {against}: the delta is corrupt or "
                "belongs to another reference. Re-upload the file."
            ) from exc

    def _read_content_delta(
        self, loc: Location, ref_key: str, meta: Mapping[str, str], reference: Path, delta: Path, out: Path,
        scratch: Path, budget: ReadBudget,
    ) -> GetResult:  # fmt: skip
        """A delta of decompressed contents (content_delta.py): rebuilt into ``out`` (get()'s temp file, renamed
        into place only once verified), then the SHA-256 checked."""
        where = f"s3://{loc.bucket}/{loc.delta_key}"
        fields = {n: v for n in CONTENT_FIELDS if (v := meta_get(meta, n)) is not None}
        why = content_delta.rebuild(
            where, f"s3://{loc.bucket}/{ref_key}", fields, reference, delta, out, scratch,
            lambda src, d, o, against: self._decode(loc, src, d, o, against, budget.contents, budget), budget,
            lambda needed: self._require_space(needed, f"reading s3://{loc.bucket}/{loc.key}"),
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
        budget: ReadBudget,
    ) -> GetResult:
        """A delta stock xdelta3 took between decompressed contents (external_compression.py): decompress the
        reference, apply, recompress with the program stock xdelta3 runs, check the SHA-256."""
        where = f"s3://{loc.bucket}/{loc.delta_key}"
        source, against = reference, f"s3://{loc.bucket}/{ref_key}"
        if external.source is not None:
            source, against = scratch / "reference.content", f"the decompressed s3://{loc.bucket}/{ref_key}"
            try:
                reach = shape(delta).source_extent  # how far the delta reads into the decompressed reference
            except CodecError as exc:
                raise IntegrityError(f"{where} is not VCDIFF ({exc}). Nothing was written.") from exc
            self._require_space(reach, f"reading s3://{loc.bucket}/{loc.key}")
            external_compression.decompress(external.source, reference, source, where, reach)
        if external.target is None:
            self._decode(loc, source, delta, out, against, budget.file, budget)
        else:  # stock xdelta3 records no contents size: the delta's own declaration, checked against free space
            self._decode(loc, source, delta, scratch / "content", against, None, budget)
            external_compression.recompress(external.target, scratch / "content", out, where, budget)
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
        _check_hash(self.log, self.strict, loc, loc.delta_key, expected, actual)
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
        _check_hash(self.log, self.strict, loc, loc.key, expected, actual)
        kind: Kind = "direct" if expected else "regular"
        return GetResult(loc.bucket, loc.key, loc.key, kind, str(out), head.size, actual, expected is not None)


def _declared_size(loc: Location, meta: Mapping[str, str]) -> int | None:
    """The delta's ``dg-file-size``: None when it records none, an IntegrityError when it is not a byte count."""
    text = meta_get(meta, "file-size")
    size = byte_count(text)
    if text is not None and size is None:
        raise IntegrityError(
            f"s3://{loc.bucket}/{loc.delta_key}: its dg-file-size is {text!r}, not a byte count: the object's "
            "metadata is damaged. Re-upload the file. Nothing was written."
        )
    return size


def _destination(dest: Path, name: str) -> Path:
    target = dest / name if dest.is_dir() else dest
    if not target.parent.is_dir():
        raise InvalidLocation(
            f"Destination directory {str(target.parent)!r} does not exist: create it or choose another path."
        )
    return target


def _check_hash(
    log: logging.Logger, strict: bool, loc: Location, stored_key: str, expected: str | None, actual: str
) -> None:
    if expected is None and strict:
        raise IntegrityError(
            f"s3://{loc.bucket}/{stored_key} records no SHA-256 (dg-file-sha256: another tool wrote it), so it "
            "cannot be verified, and this store is strict (connection extra strict / DG_STRICT). Nothing was "
            "written. Re-upload it with this provider or DeltaGlider, or read it from a connection that is not strict."
        )
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
