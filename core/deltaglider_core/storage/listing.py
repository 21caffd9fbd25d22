"""Logical listing: user objects only (``.delta`` stripped, references and internal keys hidden).

Pages come from ListObjectsV2 in key order, so nothing is lost or repeated across pages. With metadata,
each page's objects are HEADed with bounded parallelism to learn original sizes, hashes and kinds.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

from deltaglider_core.models import Kind, ObjectInfo
from deltaglider_core.storage.format import DELTA_SUFFIX, is_deltaglider_object, logical_key, meta_get
from deltaglider_core.support.limits import byte_count
from deltaglider_core.transport.s3 import S3, Head, Listed, ListPage


def info_from_head(bucket: str, logical: str, head: Head) -> ObjectInfo:
    """An ObjectInfo from the metadata of the stored object."""
    meta = head.metadata
    is_delta = head.key.endswith(DELTA_SUFFIX)
    kind: Kind = "delta" if is_delta else ("direct" if is_deltaglider_object(meta) else "regular")
    declared = byte_count(meta_get(meta, "file-size"))
    original = declared if declared is not None else (None if is_delta else head.size)
    return ObjectInfo(
        bucket=bucket,
        key=logical,
        stored_key=head.key,
        kind=kind,
        original_size=original,
        stored_size=head.size,
        sha256=meta_get(meta, "file-sha256"),
        last_modified=head.last_modified,
        ref_key=meta_get(meta, "ref-key") if is_delta else None,
    )


def info_from_listing(bucket: str, logical: str, obj: Listed) -> ObjectInfo:
    """An ObjectInfo from LIST alone: a delta's original size and every hash stay unknown (None)."""
    is_delta = obj.key.endswith(DELTA_SUFFIX)
    return ObjectInfo(
        bucket=bucket,
        key=logical,
        stored_key=obj.key,
        kind="delta" if is_delta else "direct",
        original_size=None if is_delta else obj.size,
        stored_size=obj.size,
        last_modified=obj.last_modified,
    )


def iter_objects(
    s3: S3,
    bucket: str,
    prefix: str = "",
    *,
    recursive: bool = True,
    with_metadata: bool = True,
    start_after: str | None = None,
    max_workers: int = 16,
) -> Iterator[ObjectInfo]:
    delimiter = None if recursive else "/"
    pool = ThreadPoolExecutor(max_workers=max_workers) if with_metadata else None
    try:
        for page in s3.pages(bucket, prefix, delimiter=delimiter, start_after=start_after):
            visible: list[tuple[Listed, str]] = []
            for obj in page.objects:
                logical = logical_key(obj.key)
                if logical is not None:
                    visible.append((obj, logical))
            if pool is None:
                for obj, logical in visible:
                    yield info_from_listing(bucket, logical, obj)
                continue
            heads = pool.map(lambda item: s3.head(bucket, item[0].key), visible)
            for (_, logical), head in zip(visible, heads, strict=True):
                if head is not None:  # None: deleted between LIST and HEAD
                    yield info_from_head(bucket, logical, head)
    finally:
        if pool is not None:
            pool.shutdown(wait=True)


def _level(s3: S3, bucket: str, prefix: str) -> tuple[list[Listed], list[str]]:
    objects: list[Listed] = []
    prefixes: list[str] = []
    for page in s3.pages(bucket, prefix, delimiter="/"):
        objects.extend(page.objects)
        prefixes.extend(page.prefixes)
    return objects, prefixes


def parallel_pages(s3: S3, bucket: str, prefix: str = "", *, workers: int = 8, depth: int = 3) -> Iterator[ListPage]:
    """Every object under ``prefix``, listed by several concurrent LISTs (in no particular order).

    Folders are discovered level by level (``Delimiter="/"``, up to ``depth`` levels or until there are
    ``workers`` of them); objects met on the way are yielded, then each remaining folder is listed in full
    on a thread pool. Every key is yielded exactly once: it either sits on a level that was listed, or
    below exactly one remaining folder. A flat prefix simply degrades to one sequential LIST.
    """
    with ThreadPoolExecutor(max_workers=workers) as pool:
        frontier = [prefix]
        for _ in range(depth):
            if len(frontier) >= workers:
                break
            found: list[str] = []
            for objects, prefixes in pool.map(lambda p: _level(s3, bucket, p), frontier):
                yield ListPage(objects=objects)
                found.extend(prefixes)
            frontier = found
            if not frontier:
                return
        for pages in pool.map(lambda p: list(s3.pages(bucket, p)), frontier):
            yield from pages
