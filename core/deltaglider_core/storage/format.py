"""On-S3 key layout and ``dg-*`` metadata, compatible with DeltaGlider 6.x.

A deltaspace is a bucket plus the parent prefix of a key. Its first reference is
``<prefix>/reference.bin``; delta-compressed files are ``<prefix>/<name>.delta``; everything else is
stored as ``<prefix>/<name>``. Re-based references live at ``<prefix>/.dg-bases/<n>/reference.bin`` and
are found by readers through ``dg-ref-key``, so DeltaGlider 6 readers resolve them unchanged.
"""

from __future__ import annotations

import base64
import datetime as _dt
import email.header
import re
from collections.abc import Mapping
from dataclasses import dataclass

from deltaglider_core.errors import InvalidLocation

REFERENCE_NAME = "reference.bin"
DELTA_SUFFIX = ".delta"
BASES_DIR = ".dg-bases"
INTERNAL_DIR = ".deltaglider"
TRASH_PREFIX = f"{INTERNAL_DIR}/trash/"  # references prune removed, kept a grace period (see prune.py)
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
    """Read ``field`` from S3 user metadata, accepting every legacy spelling DeltaGlider used.

    Values that are RFC 2047 encoded words (how non-ASCII names are stored, see :func:`meta_text`) are decoded.
    """
    lowered = {k.lower(): v for k, v in metadata.items()}
    for name in _aliases(field):
        value = lowered.get(name)
        if value is not None and value != "":
            return _from_meta_text(value)
    return None


def meta_text(value: str) -> str:
    """A metadata value S3 can carry: ASCII as it is, anything else as an RFC 2047 encoded word.

    S3 user metadata travels in HTTP headers and must be ASCII (botocore refuses anything else before
    sending). RFC 2047 is S3's own convention for non-ASCII metadata (it returns such values encoded that
    way), so a name like ``app-日本.zip`` is stored as ``=?UTF-8?B?...?=`` and read back by :func:`meta_get`.
    Readers that only need the ASCII fields (DeltaGlider 6: ref-key, hashes, sizes) are unaffected.
    """
    if value.isascii():
        return value
    return "=?UTF-8?B?" + base64.b64encode(value.encode("utf-8")).decode("ascii") + "?="


def _from_meta_text(value: str) -> str:
    if not value.startswith("=?") or not value.endswith("?="):
        return value
    try:
        return str(email.header.make_header(email.header.decode_header(value)))
    except (ValueError, LookupError, UnicodeDecodeError):
        return value  # not an encoded word after all: keep the text as stored


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


_BUCKET_CHARS = re.compile(r"^[a-z0-9.\-]+$")
_IPV4_LIKE = re.compile(r"^\d{1,3}(\.\d{1,3}){3}$")
_RESERVED_PREFIXES = {
    "xn--": "reserved by S3",
    "sthree-": "reserved by S3",
    "amzn-s3-demo-": "reserved by S3 for documentation examples",
}
_RESERVED_SUFFIXES = {
    "-s3alias": "reserved for access point aliases",
    "--ol-s3": "reserved for Object Lambda access point aliases",
    ".mrap": "reserved for Multi-Region Access Points",
    "--table-s3": "reserved for table buckets",
}
_GENERATION_RE = re.compile(r"/?" + re.escape(BASES_DIR) + r"/(\d{4,})/" + re.escape(REFERENCE_NAME) + "$")


def base_generation(ref_key: str) -> int | None:
    """Generation number of a re-based reference key, 0 for a plain reference.bin, None otherwise."""
    match = _GENERATION_RE.search(ref_key)
    if match:
        return int(match.group(1))
    if ref_key == REFERENCE_NAME or ref_key.endswith("/" + REFERENCE_NAME):
        return 0
    return None


def _bucket_problem(bucket: str) -> str | None:
    """The S3 general-purpose bucket naming rule ``bucket`` breaks, or None."""
    if not 3 <= len(bucket) <= 63:
        return f"it is {len(bucket)} characters long; bucket names have 3 to 63"
    if not _BUCKET_CHARS.match(bucket):
        bad = sorted({c for c in bucket if not ((c.islower() and c.isascii()) or c.isdigit() or c in ".-")})
        return f"it contains {''.join(bad)!r}; only lowercase letters, digits, '.' and '-' are allowed"
    if not (bucket[0].isalnum() and bucket[-1].isalnum()):
        return "it must begin and end with a letter or digit"
    if ".." in bucket:
        return "it contains two adjacent periods"
    if _IPV4_LIKE.match(bucket):
        return "it is formatted as an IP address"
    for prefix, why in _RESERVED_PREFIXES.items():
        if bucket.startswith(prefix):
            return f"the prefix {prefix!r} is {why}"
    for suffix, why in _RESERVED_SUFFIXES.items():
        if bucket.endswith(suffix):
            return f"the suffix {suffix!r} is {why}"
    return None


def validate_bucket(bucket: str) -> str:
    """Check ``bucket`` against S3's naming rules, naming the rule it breaks.

    S3 Express One Zone directory buckets (``--x-s3``) are refused on purpose: their listings are not in key
    order, which the listing, migration resume and delete logic rely on.
    """
    if not isinstance(bucket, str) or not bucket:
        raise InvalidLocation("Invalid bucket name '': give the bucket's name (for example 'my-artifacts').")
    if bucket.endswith("--x-s3"):
        raise InvalidLocation(
            f"Bucket {bucket!r} is an S3 Express One Zone directory bucket, which this provider does not support "
            "(directory buckets list keys out of order): use a general purpose bucket."
        )
    problem = _bucket_problem(bucket)
    if problem is not None:
        raise InvalidLocation(f"Invalid bucket name {bucket!r}: {problem} (S3 bucket naming rules).")
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


def default_reference(space: str) -> str:
    """The reference key of deltaspace ``space`` (a folder, "" for the bucket's root): what a delta without
    ``dg-ref-key`` is read against."""
    return f"{space}/{REFERENCE_NAME}" if space else REFERENCE_NAME


def is_reference_key(key: str) -> bool:
    """A deltaspace's reference (its own or a generation's under ``.dg-bases/``), not a trashed copy."""
    return key.rpartition("/")[2] == REFERENCE_NAME and not key.startswith(INTERNAL_DIR + "/")


def deltaspace_of(key: str) -> str:
    """The deltaspace a stored key belongs to: its folder, with a generation's ``.dg-bases/NNNN/`` folded in."""
    parts = key.split("/")[:-1]
    if BASES_DIR in parts:
        parts = parts[: parts.index(BASES_DIR)]
    return "/".join(parts)


def logical_key(stored_key: str) -> str | None:
    """The logical key for a stored key, or None for internal objects and folder markers (``dir/`` keys, which
    S3 consoles create: a folder, not a file, so listings, downloads and syncs pass over them)."""
    if is_internal_key(stored_key) or stored_key.endswith("/"):
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
    meta[meta_key("source-name")] = meta_text(source_name)
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
            meta_key("original-name"): meta_text(original_name),
            meta_key("file-size"): str(size),
            meta_key("ref-key"): meta_text(ref_key),
            meta_key("ref-sha256"): ref_sha256,
            meta_key("delta-size"): str(delta_size),
            meta_key("delta-cmd"): meta_text(delta_cmd),
        }
    )
    if note:
        meta[meta_key("note")] = note
    return meta


def direct_metadata(tool: str, *, original_name: str, sha256: str, size: int, md5: str | None) -> dict[str, str]:
    meta = _common(tool, sha256, md5)
    meta.update(
        {
            meta_key("original-name"): meta_text(original_name),
            meta_key("file-size"): str(size),
            meta_key("compression"): "none",
        }
    )
    return meta
