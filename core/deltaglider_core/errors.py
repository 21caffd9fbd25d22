"""Typed errors. Every message names the bucket/key or path involved and what to do about it."""

from __future__ import annotations


class DeltaGliderError(Exception):
    """Base class of every error raised by deltaglider_core.

    Errors that come from an S3 answer carry what an operator needs to act on it: the S3 error ``code``
    (``NoSuchBucket``, ``SlowDown``...), the ``request_id`` AWS support asks for, the HTTP ``status``, and
    whether a retry may succeed (``retryable``: throttling, 5xx, timeouts, lost connections).
    """

    def __init__(
        self,
        message: str = "",
        *,
        code: str | None = None,
        request_id: str | None = None,
        status: int | None = None,
        retryable: bool = False,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.request_id = request_id
        self.status = status
        self.retryable = retryable

    def with_message(self, message: str) -> DeltaGliderError:
        """The same kind of error (and S3 details) with another message, e.g. one that adds context."""
        return type(self)(
            message, code=self.code, request_id=self.request_id, status=self.status, retryable=self.retryable
        )


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


class SourceChanged(DeltaGliderError):
    """A local file changed while it was being hashed or stored (another process still writes it)."""


class CodecError(DeltaGliderError):
    """The VCDIFF encoder or decoder failed."""


class ReferenceInUse(DeltaGliderError):
    """A reference still has deltas pointing at it."""
