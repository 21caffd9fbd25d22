"""DeltaStore: the store's lifecycle (what it opens, it closes), head/list/delete/prune; the write path is
write_path.py, the read path read_path.py, the key layout and metadata format.py."""

from __future__ import annotations

import atexit
import datetime as _dt
import functools
import logging
import os
import shutil
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from deltaglider_core.codec.budget import budget_window
from deltaglider_core.codec.xdelta3 import Codec, default_codec
from deltaglider_core.errors import NotFound
from deltaglider_core.models import DeleteResult, ObjectInfo
from deltaglider_core.storage.cache import ReferenceCache, make_cache
from deltaglider_core.storage.config import StoreConfig
from deltaglider_core.storage.format import (
    validate_bucket,
    validate_logical_key,
)
from deltaglider_core.storage.forms import Forms
from deltaglider_core.storage.listing import info_from_head, iter_objects
from deltaglider_core.storage.parts import TOOL
from deltaglider_core.storage.prune import DEFAULT_GRACE, PruneReport, prune
from deltaglider_core.storage.read_path import ReadPath
from deltaglider_core.storage.references import References
from deltaglider_core.storage.write_path import WritePath
from deltaglider_core.support.scratch import private_dir
from deltaglider_core.transport.endpoint import Endpoint
from deltaglider_core.transport.s3 import DEFAULT_PART_SIZE


class DeltaStore(WritePath, ReadPath):
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
        self.strict = config.strict
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
            delta_extensions=config.delta_extensions,
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
        loc = validate_logical_key(bucket, key)
        # A put that failed half-way can leave both forms (docs/format.md, same-key writers): the shadowed one
        # goes first, so the key never reads as an older version between the two deletes.
        other = loc.key if info.stored_key == loc.delta_key else loc.delta_key
        shadowed = self.s3.head(bucket, other) is not None
        if shadowed:
            self.s3.delete(bucket, other)
        self.s3.delete(bucket, info.stored_key)
        return DeleteResult(bucket, key, (info.stored_key, other) if shadowed else (info.stored_key,), False)

    def prune(
        self, bucket: str, prefix: str = "", *, grace: _dt.timedelta | None = None, dry_run: bool = False
    ) -> PruneReport:
        """Remove references no delta names (older than ``grace``, default 24 h); see :mod:`.prune`."""
        validate_bucket(bucket)
        return prune(
            self.s3, bucket, prefix, grace=DEFAULT_GRACE if grace is None else grace, dry_run=dry_run,
            workers=self.max_workers,
        )  # fmt: skip
