"""On-S3 key layout and ``dg-*`` metadata, compatible with DeltaGlider 6.x.

A deltaspace is a bucket plus the parent prefix of a key. Its first reference is
``<prefix>/reference.bin``; delta-compressed files are ``<prefix>/<name>.delta``; everything else is
stored as ``<prefix>/<name>``. Re-based references live at ``<prefix>/.dg-bases/<n>/reference.bin`` and
are found by readers through ``dg-ref-key``, so DeltaGlider 6 readers resolve them unchanged.
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Mapping
from dataclasses import dataclass

from .errors import InvalidLocation

REFERENCE_NAME = "reference.bin"
DELTA_SUFFIX = ".delta"
BASES_DIR = ".dg-bases"
INTERNAL_DIR = ".deltaglider"
FORMAT_VERSION = "1"
ZERO_DIFF_NOTE = "zero-diff (reference identical)"
REFERENCE_NOTE = "reference"

# Canonical field -> metadata key as DeltaGlider 6 writes it.
FIELDS = (
    "tool",
    "original-name",
    "file-sha256",
    "file-size",
    "created-at",
    "ref-key",
    "ref-sha256",
    "delta-size",
    "delta-cmd",
    "note",
    "compression",
    "source-name",
    "md5",
    "format-version",
)


def meta_key(field: str) -> str:
    """The metadata key this project writes for ``field`` (``dg-<field>``)."""
    return f"dg-{field}"


def _aliases(field: str) -> tuple[str, ...]:
    under = field.replace("-", "_")
    return (f"dg-{field}", f"dg_{under}", f"dg-{under}", under, field)


def meta_get(metadata: Mapping[str, str], field: str) -> str | None:
    """Read ``field`` from S3 user metadata, accepting every legacy spelling DeltaGlider used."""
    lowered = {k.lower(): v for k, v in metadata.items()}
    for name in _aliases(field):
        value = lowered.get(name)
        if value is not None and value != "":
            return value
    return None


def is_deltaglider_object(metadata: Mapping[str, str]) -> bool:
    """True when the metadata carries a DeltaGlider file hash (under any spelling)."""
    return meta_get(metadata, "file-sha256") is not None


def utc_timestamp(now: _dt.datetime | None = None) -> str:
    """``dg-created-at`` in DeltaGlider's format: ISO 8601, microseconds, ``Z`` suffix."""
    moment = now or _dt.datetime.now(_dt.timezone.utc)
    return moment.astimezone(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class Location:
    """A logical object location: bucket + key, split into deltaspace prefix and file name."""

    bucket: str
    key: str

    @property
    def prefix(self) -> str:
        """The deltaspace prefix (no trailing slash; '' for the bucket root)."""
        return self.key.rpartition("/")[0]

    @property
    def name(self) -> str:
        return self.key.rpartition("/")[2]

    def sibling(self, name: str) -> str:
        return f"{self.prefix}/{name}" if self.prefix else name

    @property
    def delta_key(self) -> str:
        return self.key + DELTA_SUFFIX

    @property
    def reference_key(self) -> str:
        """The deltaspace's first reference key."""
        return self.sibling(REFERENCE_NAME)

    def base_key(self, generation: int) -> str:
        """Reference key of re-base ``generation`` (0 is the plain ``reference.bin``)."""
        if generation == 0:
            return self.reference_key
        return self.sibling(f"{BASES_DIR}/{generation:04d}/{REFERENCE_NAME}")

    @property
    def bases_prefix(self) -> str:
        return self.sibling(f"{BASES_DIR}/")

    @property
    def children_prefix(self) -> str:
        return f"{self.prefix}/" if self.prefix else ""


_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.\-_]{1,61}[a-z0-9]$")
_GENERATION_RE = re.compile(r"/?" + re.escape(BASES_DIR) + r"/(\d{4,})/" + re.escape(REFERENCE_NAME) + "$")


def base_generation(ref_key: str) -> int | None:
    """Generation number of a re-based reference key, 0 for a plain reference.bin, None otherwise."""
    match = _GENERATION_RE.search(ref_key)
    if match:
        return int(match.group(1))
    if ref_key == REFERENCE_NAME or ref_key.endswith("/" + REFERENCE_NAME):
        return 0
    return None


def validate_bucket(bucket: str) -> str:
    if not bucket or not _BUCKET_RE.match(bucket):
        raise InvalidLocation(
            f"Invalid bucket name {bucket!r}: S3 bucket names are 3-63 characters of lowercase letters, "
            "digits, '.', '-' (for example 'my-artifacts')."
        )
    return bucket


def validate_logical_key(bucket: str, key: str) -> Location:
    """Check a caller-supplied logical key and return its location."""
    validate_bucket(bucket)
    where = f"s3://{bucket}/{key}"
    if not key or key.endswith("/"):
        raise InvalidLocation(f"Invalid key {where!r}: a file key must name a file, not a prefix.")
    if key.startswith("/"):
        raise InvalidLocation(f"Invalid key {where!r}: keys must not start with '/'.")
    loc = Location(bucket, key)
    if loc.name == REFERENCE_NAME:
        raise InvalidLocation(
            f"Invalid key {where!r}: 'reference.bin' is reserved for delta references; rename the file."
        )
    if loc.name.endswith(DELTA_SUFFIX):
        raise InvalidLocation(
            f"Invalid key {where!r}: names ending in '.delta' are reserved for stored deltas; rename the file."
        )
    if is_internal_key(key):
        raise InvalidLocation(
            f"Invalid key {where!r}: '{BASES_DIR}/' and '{INTERNAL_DIR}/' are reserved for internal objects."
        )
    return loc


def is_internal_key(key: str) -> bool:
    """Keys that never appear as user objects: references and internal folders."""
    parts = key.split("/")
    if parts[-1] == REFERENCE_NAME:
        return True
    return any(p in (BASES_DIR, INTERNAL_DIR) for p in parts[:-1])


def logical_key(stored_key: str) -> str | None:
    """The logical key for a stored key, or None for internal objects."""
    if is_internal_key(stored_key):
        return None
    if stored_key.endswith(DELTA_SUFFIX):
        return stored_key[: -len(DELTA_SUFFIX)]
    return stored_key


def folder(prefix: str) -> str:
    """A prefix as a folder: '' stays '', anything else ends with exactly one trailing '/'."""
    return prefix if not prefix or prefix.endswith("/") else prefix + "/"


def parse_s3_url(url: str) -> tuple[str, str]:
    """Split ``s3://bucket/prefix`` into (bucket, prefix). The prefix may be empty."""
    if not isinstance(url, str) or not url.startswith("s3://"):
        raise InvalidLocation(f"Invalid S3 URL {url!r}: expected 's3://bucket/prefix/'.")
    bucket, _, rest = url[len("s3://") :].partition("/")
    validate_bucket(bucket)
    return bucket, rest


def _common(tool: str, sha256: str, md5: str | None) -> dict[str, str]:
    meta = {meta_key("tool"): tool, meta_key("file-sha256"): sha256, meta_key("created-at"): utc_timestamp()}
    meta[meta_key("format-version")] = FORMAT_VERSION
    if md5:
        meta[meta_key("md5")] = md5
    return meta


def reference_metadata(tool: str, source_name: str, sha256: str, md5: str | None) -> dict[str, str]:
    meta = _common(tool, sha256, md5)
    meta[meta_key("source-name")] = source_name
    meta[meta_key("note")] = REFERENCE_NOTE
    return meta


def delta_metadata(
    tool: str,
    *,
    original_name: str,
    sha256: str,
    size: int,
    md5: str | None,
    ref_key: str,
    ref_sha256: str,
    delta_size: int,
    delta_cmd: str,
    note: str | None = None,
) -> dict[str, str]:
    meta = _common(tool, sha256, md5)
    meta.update(
        {
            meta_key("original-name"): original_name,
            meta_key("file-size"): str(size),
            meta_key("ref-key"): ref_key,
            meta_key("ref-sha256"): ref_sha256,
            meta_key("delta-size"): str(delta_size),
            meta_key("delta-cmd"): delta_cmd,
        }
    )
    if note:
        meta[meta_key("note")] = note
    return meta


def direct_metadata(tool: str, *, original_name: str, sha256: str, size: int, md5: str | None) -> dict[str, str]:
    meta = _common(tool, sha256, md5)
    meta.update(
        {
            meta_key("original-name"): original_name,
            meta_key("file-size"): str(size),
            meta_key("compression"): "none",
        }
    )
    return meta
