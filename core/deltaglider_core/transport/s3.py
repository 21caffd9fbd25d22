"""The few S3 calls the engine needs, with typed errors that name the bucket and key.

The boto3 client is injected. Bodies are streamed through files: uploads above ``multipart_threshold``
go through multipart (bounded part buffers, conditional completion), downloads are read in chunks.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as _dt
import hashlib
import io
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, ParamValidationError

from deltaglider_core.errors import (
    AccessDenied,
    BucketNotFound,
    DeltaGliderError,
    NotFound,
    SourceChanged,
    StorageError,
)
from deltaglider_core.support.digest import FileDigest, changed_message
from deltaglider_core.transport.fast_http import FastS3, make_fast

CHUNK = 1 << 20
DEFAULT_MULTIPART_THRESHOLD = 256 << 20
DEFAULT_PART_SIZE = 64 << 20
FAST_GET_MAX = 4 << 20  # objects up to this size may be read in one exchange over the fast transport
FAST_PUT_MAX = 1 << 20  # unconditional uploads up to this size may go over the fast transport
MAX_PARTS = 9_000  # below S3's 10,000-part limit
COPY_OBJECT_MAX = 5 << 30  # CopyObject's limit; larger objects are copied in parts
LIST_PAGE_SIZE: int | None = None  # ListObjectsV2 MaxKeys of new instances (None: the server's, 1,000 on S3)

_MISSING = {"404", "NoSuchKey", "NotFound"}
_PRECONDITION = {"PreconditionFailed", "412", "ConditionalRequestConflict"}
_BAD_DIGEST = {"BadDigest", "InvalidDigest"}  # the body does not match the Content-MD5 sent with it


def _base64_md5(hex_md5: str) -> str:
    return base64.b64encode(bytes.fromhex(hex_md5)).decode("ascii")


@dataclass(frozen=True)
class Head:
    """What a HEAD (or the headers of a GET) tells about an object."""

    key: str
    size: int
    metadata: Mapping[str, str]
    last_modified: _dt.datetime | None = None
    etag: str | None = None


@dataclass(frozen=True)
class Listed:
    """One entry of a LIST page."""

    key: str
    size: int
    last_modified: _dt.datetime
    etag: str = ""


@dataclass
class ListPage:
    objects: list[Listed] = field(default_factory=list)
    prefixes: list[str] = field(default_factory=list)


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


_RETRYABLE_CODES = {
    "SlowDown", "Throttling", "ThrottlingException", "RequestLimitExceeded", "RequestTimeout",
    "InternalError", "ServiceUnavailable", "500", "502", "503", "504",
}  # fmt: skip


def s3_error(exc: Exception, action: str, bucket: str, key: str | None = None) -> DeltaGliderError:
    """Map a botocore error to a typed error naming ``action`` on ``s3://bucket/key``, with the S3 error code,
    request id, HTTP status and whether a retry may help."""
    where = f"s3://{bucket}/{key}" if key is not None else f"s3://{bucket}"
    if isinstance(exc, ClientError):
        code = _code(exc)
        meta = exc.response.get("ResponseMetadata", {})
        status = int(meta["HTTPStatusCode"]) if meta.get("HTTPStatusCode") else None
        request_id = meta.get("RequestId") or meta.get("HostId") or None
        retryable = code in _RETRYABLE_CODES or (status is not None and status >= 500)

        def typed(cls: type[DeltaGliderError], message: str) -> DeltaGliderError:
            return cls(message, code=code or None, request_id=request_id, status=status, retryable=retryable)

        if code == "NoSuchBucket":
            return typed(
                BucketNotFound,
                f"Bucket {bucket!r} does not exist ({action} {where}): create it or fix the bucket name.",
            )
        if code in _MISSING:
            return typed(NotFound, f"{where} does not exist ({action}).")
        if code in ("AccessDenied", "403", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
            return typed(
                AccessDenied,
                f"Access denied while trying to {action} {where} ({code}): check the connection's credentials "
                "and the bucket policy.",
            )
        request = f" (request id {request_id})" if request_id else ""
        return typed(StorageError, f"S3 refused to {action} {where}: {code}: {exc}{request}")
    if isinstance(exc, ParamValidationError):
        return StorageError(
            f"Could not {action} {where}: the request was refused before sending ({exc}). "
            "This is not a network problem: the value named above cannot be sent to S3."
        )
    return StorageError(f"Could not {action} {where}: {exc}. Check the endpoint URL and the network.", retryable=True)


class FilePart(io.RawIOBase):
    """``length`` bytes of a file from ``offset``, as a seekable stream: a multipart part is sent (and its
    checksum computed) in small reads, never held in memory whole."""

    def __init__(self, path: Path, offset: int, length: int) -> None:
        super().__init__()
        self._file = open(path, "rb")  # noqa: SIM115 - closed by close()
        self._start, self._length, self._pos = offset, length, 0
        self._file.seek(offset)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def __len__(self) -> int:
        return self._length

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        wanted = min(len(view), self._length - self._pos)
        if wanted <= 0:
            return 0
        got = self._file.readinto(view[:wanted])
        self._pos += got or 0
        return got or 0

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._length}[whence]
        self._pos = max(0, min(self._length, base + offset))
        self._file.seek(self._start + self._pos)
        return self._pos

    def tell(self) -> int:
        return self._pos

    def close(self) -> None:
        self._file.close()
        super().close()


class S3:
    """Thin, typed wrapper over a boto3 S3 client."""

    def __init__(
        self,
        client: Any,
        *,
        multipart_threshold: int = DEFAULT_MULTIPART_THRESHOLD,
        part_size: int = DEFAULT_PART_SIZE,
        fast_transport: bool = True,
        credentials: Any = None,
        verify: bool | str | None = None,
    ) -> None:
        self.client = client
        self.fast_transport = fast_transport
        self.credentials = credentials  # the client's own (session.get_credentials()): needed by the fast path
        self.verify = verify
        self.multipart_threshold = multipart_threshold
        self.part_size = part_size
        self.page_size: int | None = LIST_PAGE_SIZE
        self._known_buckets: set[str] = set()
        self._conditional: dict[str, bool] = {}
        self._conditional_delete: dict[str, bool] = {}
        self._probe_lock = threading.Lock()  # one probe at a time: threads starting together wait for its answer
        self._fast: FastS3 | None = None
        self._fast_checked = False

    def close(self) -> None:
        """Close the fast transport's connections (the boto3 client belongs to the caller)."""
        if self._fast is not None:
            self._fast.close()

    @property
    def fast(self) -> FastS3 | None:
        """The lighter transport for HEAD, LIST and small GETs (see fast_http), when equivalent to boto3's."""
        if not self._fast_checked:
            self._fast = make_fast(self.client, self.credentials, verify=self.verify, enabled=self.fast_transport)
            self._fast_checked = True
        return self._fast

    @contextlib.contextmanager
    def _calls(self, action: str, bucket: str, key: str | None = None) -> Iterator[None]:
        """The one funnel: any botocore error inside becomes a typed error (see :func:`s3_error`)."""
        try:
            yield
        except (ClientError, BotoCoreError) as exc:
            raise s3_error(exc, action, bucket, key) from exc

    def ensure_bucket(self, bucket: str) -> None:
        """Fail with NotFound unless ``bucket`` exists (checked once per bucket per instance)."""
        if bucket in self._known_buckets:
            return
        try:
            with self._calls("check bucket", bucket):
                self.client.head_bucket(Bucket=bucket)
        except NotFound as exc:  # HeadBucket answers a bare 404 for a missing bucket
            raise BucketNotFound(
                f"Bucket {bucket!r} does not exist: create it first or fix the bucket name.",
                code=exc.code, request_id=exc.request_id, status=exc.status,
            ) from exc  # fmt: skip
        self._known_buckets.add(bucket)

    def head(self, bucket: str, key: str) -> Head | None:
        """HEAD an object; None when it does not exist."""
        fast = self.fast
        if fast is not None:
            answered, fields = fast.head(bucket, key)
            if answered:
                return None if fields is None else Head(key=key, **fields)
        try:
            with self._calls("read metadata of", bucket, key):
                resp = self.client.head_object(Bucket=bucket, Key=key)
        except NotFound as exc:
            if isinstance(exc, BucketNotFound):
                raise
            return None
        return Head(
            key=key,
            size=int(resp.get("ContentLength", 0)),
            metadata=dict(resp.get("Metadata", {})),
            last_modified=resp.get("LastModified"),
            etag=str(resp.get("ETag", "")).strip('"') or None,
        )

    def honours_if_none_match(self, bucket: str, probe_key: str) -> bool:
        """Whether the server refuses a second ``PutObject`` with ``If-None-Match: *`` on one key (probed once
        per bucket with two tiny PUTs on ``probe_key``, which is then deleted; cached)."""
        return self._probed_once(self._conditional, bucket, lambda: self._probe_if_none_match(bucket, probe_key))

    def _probed_once(self, answers: dict[str, bool], bucket: str, probe: Callable[[], bool]) -> bool:
        """``answers[bucket]``, probing first if unknown; one probe at a time, so threads that start together
        wait for the first one's answer instead of each probing."""
        known = answers.get(bucket)
        if known is not None:
            return known
        with self._probe_lock:
            known = answers.get(bucket)
            if known is None:
                known = answers[bucket] = probe()
        return known

    def _probe_if_none_match(self, bucket: str, probe_key: str) -> bool:
        with self._calls("probe conditional writes in", bucket, probe_key):
            try:
                self.client.put_object(Bucket=bucket, Key=probe_key, Body=b"first", IfNoneMatch="*")
                try:
                    self.client.put_object(Bucket=bucket, Key=probe_key, Body=b"second", IfNoneMatch="*")
                    honoured = False
                except ClientError as exc:
                    if _code(exc) not in _PRECONDITION:
                        raise
                    honoured = True
            finally:
                with contextlib.suppress(ClientError, BotoCoreError):
                    self.client.delete_object(Bucket=bucket, Key=probe_key)
        return honoured

    def honours_if_match_delete(self, bucket: str, probe_key: str) -> bool:
        """Whether the server refuses ``DeleteObject`` with ``If-Match`` naming an ETag the object no longer has
        (probed once per bucket: two tiny PUTs on ``probe_key``, a delete naming the first one's ETag, which
        must fail and leave the object; the key is then deleted; cached)."""
        return self._probed_once(
            self._conditional_delete, bucket, lambda: self._probe_if_match_delete(bucket, probe_key)
        )

    def _probe_if_match_delete(self, bucket: str, probe_key: str) -> bool:
        with self._calls("probe conditional deletes in", bucket, probe_key):
            try:
                first = self.client.put_object(Bucket=bucket, Key=probe_key, Body=b"first")["ETag"]
                self.client.put_object(Bucket=bucket, Key=probe_key, Body=b"second!")
                try:
                    self.client.delete_object(Bucket=bucket, Key=probe_key, IfMatch=first)
                    honoured = False
                except ClientError as exc:
                    if _code(exc) not in _PRECONDITION:
                        raise
                    honoured = self.head(bucket, probe_key) is not None
            finally:
                with contextlib.suppress(ClientError, BotoCoreError):
                    self.client.delete_object(Bucket=bucket, Key=probe_key)
        return honoured

    def delete_if_match(self, bucket: str, key: str, etag: str) -> bool:
        """Delete ``key`` only while its ETag is still ``etag``; False when it changed or is gone."""
        quoted = etag if etag.startswith('"') else f'"{etag}"'
        try:
            with self._calls("delete", bucket, key):
                self.client.delete_object(Bucket=bucket, Key=key, IfMatch=quoted)
        except StorageError as exc:
            if exc.code in _PRECONDITION or (isinstance(exc, NotFound) and not isinstance(exc, BucketNotFound)):
                return False
            raise
        return True

    def download(
        self,
        bucket: str,
        key: str,
        dest: Path,
        on_chunk: Callable[[bytes], None] | None = None,
        *,
        size_hint: int | None = None,
    ) -> Head:
        """Stream an object into ``dest``; raise NotFound when it does not exist.

        ``size_hint`` (the size a listing reported) lets a small object come over the fast transport in one
        exchange; anything it does not answer (larger than expected, errors) is read through boto3.
        """
        fast = self.fast
        if fast is not None and size_hint is not None and size_hint <= FAST_GET_MAX:
            got = fast.get(bucket, key, FAST_GET_MAX)
            if got is not None:
                fields, data = got
                if on_chunk is not None:
                    on_chunk(data)
                with open(dest, "wb") as out:
                    out.write(data)
                return Head(key=key, **fields)
        with self._calls("download", bucket, key):
            resp = self.client.get_object(Bucket=bucket, Key=key)
            body = resp["Body"]
            with open(dest, "wb") as out:
                while chunk := body.read(CHUNK):
                    if on_chunk is not None:
                        on_chunk(chunk)
                    out.write(chunk)
        return Head(
            key=key,
            size=int(resp.get("ContentLength", 0)),
            metadata=dict(resp.get("Metadata", {})),
            last_modified=resp.get("LastModified"),
            etag=str(resp.get("ETag", "")).strip('"') or None,
        )

    def part_size_for(self, size: int) -> int | None:
        """The part size an upload of ``size`` bytes uses, or None when it goes up in one PUT."""
        if size <= self.multipart_threshold:
            return None
        return max(self.part_size, -(-size // MAX_PARTS))  # at most MAX_PARTS parts (S3 allows 10,000)

    def upload(
        self,
        path: Path,
        bucket: str,
        key: str,
        metadata: Mapping[str, str],
        *,
        if_none_match: bool = False,
        content_type: str = "application/octet-stream",
        digest: FileDigest | None = None,
    ) -> str | None:
        """Upload a file and return the new object's ETag ("" if the server sent none). With ``if_none_match``,
        return None (and write nothing) if the key exists.

        ``digest``: the file as it was hashed. Its MD5s go with the body (``Content-MD5``, per part for a
        multipart upload), so a server refuses bytes that changed since (``BadDigest``): the upload raises
        :class:`SourceChanged` and nothing is written. A body read for the fast path is checked here first.
        """
        size = os.path.getsize(path)
        if digest is not None and size != digest.size:
            raise SourceChanged(changed_message(path, "before it was uploaded"))
        fast = None if if_none_match else self.fast  # conditional writes stay on boto3 (exactly once, typed)
        if fast is not None and size <= FAST_PUT_MAX:
            body = path.read_bytes()
            if digest is not None and hashlib.md5(body, usedforsecurity=False).hexdigest() != digest.md5:
                raise SourceChanged(changed_message(path, "before it was uploaded"))
            etag = fast.put(bucket, key, body, metadata, content_type)
            if etag is not None:
                return etag
        extra: dict[str, Any] = {"Metadata": dict(metadata), "ContentType": content_type}
        if if_none_match:
            extra["IfNoneMatch"] = "*"
        parts = self.part_size_for(size)
        try:
            with self._calls("upload", bucket, key):
                if parts is not None:
                    md5s = digest.part_md5s if digest is not None else ()
                    resp = self._multipart(path, bucket, key, extra, parts, md5s)
                else:
                    if digest is not None:
                        extra["ContentMD5"] = _base64_md5(digest.md5)
                    with open(path, "rb") as body_file:
                        resp = self.client.put_object(Bucket=bucket, Key=key, Body=body_file, **extra)
        except StorageError as exc:
            if if_none_match and exc.code in _PRECONDITION:
                return None  # the key exists: the conditional write was refused, as asked
            if digest is not None and exc.code in _BAD_DIGEST:
                raise SourceChanged(changed_message(path, "while it was uploaded")) from exc
            raise
        return str(resp.get("ETag", "")).strip('"')

    def _multipart(
        self, path: Path, bucket: str, key: str, extra: dict[str, Any], part_size: int, md5s: tuple[str, ...]
    ) -> dict[str, Any]:
        complete_args = {"IfNoneMatch": extra.pop("IfNoneMatch")} if "IfNoneMatch" in extra else {}
        upload_id = self.client.create_multipart_upload(Bucket=bucket, Key=key, **extra)["UploadId"]
        try:
            parts = []
            # Each part streamed from the file (FilePart); the store sizes part_size from its memory budget.
            size = os.path.getsize(path)
            for number, offset in enumerate(range(0, size, part_size), start=1):
                checked = {"ContentMD5": _base64_md5(md5s[number - 1])} if len(md5s) >= number else {}
                with FilePart(path, offset, min(part_size, size - offset)) as body:
                    resp = self.client.upload_part(
                        Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=body, **checked
                    )
                parts.append({"PartNumber": number, "ETag": resp["ETag"]})
            done: dict[str, Any] = self.client.complete_multipart_upload(
                Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}, **complete_args
            )
            return done
        except BaseException:
            # The original error is what the caller needs; lifecycle rules reap a failed abort.
            with contextlib.suppress(ClientError, BotoCoreError):
                self.client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
            raise

    def copy(self, bucket: str, source_key: str, dest_key: str, head: Head) -> None:
        """Server-side copy within ``bucket``, metadata included (no bytes pass through this process)."""
        with self._calls("copy", bucket, f"{source_key} -> {dest_key}"):
            if head.size <= COPY_OBJECT_MAX:
                self.client.copy_object(
                    Bucket=bucket, Key=dest_key, CopySource={"Bucket": bucket, "Key": source_key},
                    MetadataDirective="COPY",
                )  # fmt: skip
            else:  # over CopyObject's 5 GiB limit: boto3's managed (multipart) copy, metadata passed on
                self.client.copy(
                    {"Bucket": bucket, "Key": source_key}, bucket, dest_key,
                    ExtraArgs={"Metadata": dict(head.metadata), "MetadataDirective": "REPLACE"},
                )  # fmt: skip

    def delete(self, bucket: str, key: str) -> None:
        with self._calls("delete", bucket, key):
            self.client.delete_object(Bucket=bucket, Key=key)

    def pages(
        self, bucket: str, prefix: str = "", *, delimiter: str | None = None, start_after: str | None = None
    ) -> Iterator[ListPage]:
        """LIST pages (ListObjectsV2, 1,000 keys each), in key order."""
        args: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
        if self.page_size:
            args["MaxKeys"] = self.page_size
        if delimiter:
            args["Delimiter"] = delimiter
        if start_after:
            args["StartAfter"] = start_after
        with self._calls("list", bucket, prefix):
            for raw in self._raw_pages(args):
                page = ListPage()
                for item in raw.get("Contents", []):
                    page.objects.append(
                        Listed(item["Key"], int(item["Size"]), item["LastModified"], str(item.get("ETag", "")))
                    )
                page.prefixes.extend(p["Prefix"] for p in raw.get("CommonPrefixes", []))
                yield page

    def _raw_pages(self, args: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """ListObjectsV2 pages, each from the fast transport when it answers, else from boto3 (its retries).

        Every page is one ListObjectsV2 call resumed from S3's own ``ContinuationToken``, whichever transport
        answered the page before. (boto3's paginator is not used: its ``StartingToken`` is botocore's own
        token format, and an S3 token that happens to end in ``___<n>`` is read as "skip n keys"; it also
        dropped a page's ``CommonPrefixes`` when a fallback happened mid-listing.)
        """
        token: str | None = None
        fast = self.fast
        while True:
            params = {**args, **({"ContinuationToken": token} if token else {})}
            raw = fast.list_page(params) if fast is not None else None
            if raw is None:
                raw = self.client.list_objects_v2(**params)
            yield raw
            token = raw.get("NextContinuationToken")
            if not raw.get("IsTruncated") or not token:
                return
