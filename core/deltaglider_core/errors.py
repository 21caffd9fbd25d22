"""Typed errors. Every message names the bucket/key or path involved and what to do about it."""

from __future__ import annotations


class DeltaGliderError(Exception):
    """Base class of every error raised by deltaglider_core."""


class InvalidLocation(DeltaGliderError, ValueError):
    """A bucket, key, S3 URL or local path that cannot be used."""


class NotFound(DeltaGliderError):
    """The object, bucket or reference does not exist."""


class BucketNotFound(NotFound):
    """The bucket itself does not exist."""


class IntegrityError(DeltaGliderError):
    """Reconstructed or cached bytes do not match their recorded SHA-256."""


class StorageError(DeltaGliderError):
    """S3 refused or failed a request (permissions, throttling, network)."""


class AccessDenied(StorageError):
    """S3 refused the credentials or the bucket policy refused the request (a retry does not help)."""


class CodecError(DeltaGliderError):
    """The VCDIFF encoder or decoder failed."""


class ReferenceInUse(DeltaGliderError):
    """A reference still has deltas pointing at it."""
