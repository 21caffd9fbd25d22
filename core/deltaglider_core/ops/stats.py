"""Bucket statistics: exact figures or an explicit None, never a guessed number.

One LIST pass over the raw keys. In detailed mode each page's deltas are HEADed in parallel to learn
their original sizes and which reference each uses (so orphaned references can be named). Objects stored
as they are need no HEAD for exact sizes; ``kinds=True`` HEADs them too, to split them into DeltaGlider
direct uploads and regular objects (otherwise those two counts are None and ``as_is`` is their sum).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

from deltaglider_core.models import jsonable
from deltaglider_core.storage.format import (
    DELTA_SUFFIX,
    REFERENCE_NAME,
    default_reference,
    deltaspace_of,
    is_deltaglider_object,
    is_internal_key,
    meta_get,
)
from deltaglider_core.storage.listing import parallel_pages
from deltaglider_core.storage.store import DeltaStore
from deltaglider_core.support.limits import byte_count
from deltaglider_core.transport.s3 import Listed


@dataclass(frozen=True)
class OrphanedReference:
    key: str
    size: int


@dataclass
class _Space:
    prefix: str
    objects: int = 0
    deltas: int = 0
    as_is: int = 0
    direct: int = 0
    regular: int = 0
    references: int = 0
    reference_bytes: int = 0
    known_original: int = 0
    unknown_originals: int = 0
    stored_bytes: int = 0
    ref_keys: dict[str, int] = field(default_factory=dict)
    used_refs: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class DeltaspaceStats:
    prefix: str
    objects: int
    deltas: int
    as_is: int
    direct: int | None
    regular: int | None
    references: int
    reference_bytes: int
    original_bytes: int | None
    stored_bytes: int
    saved_bytes: int | None
    saved_ratio: float | None
    orphaned_references: tuple[OrphanedReference, ...] | None


@dataclass(frozen=True)
class BucketStats:
    bucket: str
    prefix: str
    detailed: bool
    kinds: bool
    objects: int
    deltas: int
    as_is: int
    direct: int | None
    regular: int | None
    references: int
    original_bytes: int | None
    stored_bytes: int
    saved_bytes: int | None
    saved_ratio: float | None
    orphaned_references: tuple[OrphanedReference, ...] | None
    deltaspaces: tuple[DeltaspaceStats, ...]
    duration_s: float

    def to_dict(self) -> dict[str, Any]:
        return dict(jsonable(asdict(self)))


def _saved(original: int | None, stored: int) -> tuple[int | None, float | None]:
    if original is None:
        return None, None
    saved = original - stored
    return saved, (saved / original if original else 0.0)


def _finish(space: _Space, detailed: bool, kinds: bool) -> DeltaspaceStats:
    original = None if space.unknown_originals else space.known_original
    saved, ratio = _saved(original, space.stored_bytes)
    orphans = None
    if detailed:
        orphans = tuple(
            OrphanedReference(k, size) for k, size in sorted(space.ref_keys.items()) if k not in space.used_refs
        )
    return DeltaspaceStats(
        prefix=space.prefix,
        objects=space.objects,
        deltas=space.deltas,
        as_is=space.as_is,
        direct=space.direct if kinds else None,
        regular=space.regular if kinds else None,
        references=space.references,
        reference_bytes=space.reference_bytes,
        original_bytes=original,
        stored_bytes=space.stored_bytes,
        saved_bytes=saved,
        saved_ratio=ratio,
        orphaned_references=orphans,
    )


def compute_stats(
    store: DeltaStore,
    bucket: str,
    prefix: str = "",
    *,
    detailed: bool = True,
    kinds: bool = False,
    max_workers: int | None = None,
    on_page: Callable[[int, int], None] | None = None,
) -> BucketStats:
    """Savings of ``s3://bucket/prefix`` per deltaspace, from one LIST and (``detailed``/``kinds``) a HEAD per
    object that needs one, ``max_workers`` at a time (default: the store's). ``on_page`` hears each page's
    logical objects and stored bytes."""
    started = time.monotonic()
    s3 = store.s3
    max_workers = store.max_workers if max_workers is None else max_workers
    s3.ensure_bucket(bucket)
    spaces: dict[str, _Space] = {}
    with ThreadPoolExecutor(max_workers=max_workers) as pool:
        for page in parallel_pages(s3, bucket, prefix, workers=min(max_workers, 16)):
            wanted = [o for o in page.objects if _needs_head(o.key, detailed, kinds)]
            heads = dict(zip((o.key for o in wanted), pool.map(lambda o: s3.head(bucket, o.key), wanted), strict=True))
            for obj in page.objects:
                _account(spaces, obj, heads.get(obj.key), detailed)
            if on_page is not None:  # the table's units: logical objects, and every stored byte (references too)
                logical = sum(1 for o in page.objects if not is_internal_key(o.key))
                stored = sum(
                    o.size for o in page.objects if not is_internal_key(o.key) or o.key.endswith(REFERENCE_NAME)
                )
                on_page(logical, stored)
    finished = [_finish(spaces[p], detailed, kinds) for p in sorted(spaces)]
    return _totals(bucket, prefix, detailed, kinds, finished, time.monotonic() - started)


def _needs_head(key: str, detailed: bool, kinds: bool) -> bool:
    if is_internal_key(key):
        return False
    return (detailed and key.endswith(DELTA_SUFFIX)) or (kinds and not key.endswith(DELTA_SUFFIX))


def _account(spaces: dict[str, _Space], obj: Listed, head: Any, detailed: bool) -> None:
    prefix = deltaspace_of(obj.key)
    space = spaces.setdefault(prefix, _Space(prefix))
    name = obj.key.rpartition("/")[2]
    if is_internal_key(obj.key):
        if name == REFERENCE_NAME:
            space.references += 1
            space.reference_bytes += obj.size
            space.stored_bytes += obj.size
            space.ref_keys[obj.key] = obj.size
        return  # other internal objects (.deltaglider/) are not user data
    space.objects += 1
    space.stored_bytes += obj.size
    if obj.key.endswith(DELTA_SUFFIX):
        space.deltas += 1
        declared = byte_count(meta_get(head.metadata, "file-size")) if head is not None else None
        if declared is not None:
            space.known_original += declared
        else:
            space.unknown_originals += 1
        if head is not None:
            space.used_refs.add(meta_get(head.metadata, "ref-key") or default_reference(prefix))
        return
    space.known_original += obj.size
    space.as_is += 1
    if head is not None and is_deltaglider_object(head.metadata):
        space.direct += 1
    else:
        space.regular += 1


def _totals(
    bucket: str, prefix: str, detailed: bool, kinds: bool, spaces: list[DeltaspaceStats], duration: float
) -> BucketStats:
    originals = [s.original_bytes for s in spaces]
    original = None if any(o is None for o in originals) else sum(o for o in originals if o is not None)
    stored = sum(s.stored_bytes for s in spaces)
    saved, ratio = _saved(original, stored)
    orphans = None
    if detailed:
        orphans = tuple(o for s in spaces for o in (s.orphaned_references or ()))
    return BucketStats(
        bucket=bucket,
        prefix=prefix,
        detailed=detailed,
        kinds=kinds,
        objects=sum(s.objects for s in spaces),
        deltas=sum(s.deltas for s in spaces),
        as_is=sum(s.as_is for s in spaces),
        direct=sum(s.direct or 0 for s in spaces) if kinds else None,
        regular=sum(s.regular or 0 for s in spaces) if kinds else None,
        references=sum(s.references for s in spaces),
        original_bytes=original,
        stored_bytes=stored,
        saved_bytes=saved,
        saved_ratio=ratio,
        orphaned_references=orphans,
        deltaspaces=tuple(s for s in spaces if s.objects or s.references),
        duration_s=round(duration, 3),
    )


def stats_from_dict(data: dict[str, Any]) -> BucketStats:
    """Rebuild BucketStats from its ``to_dict()`` / JSON report form."""

    def orphans(items: list[dict[str, Any]] | None) -> tuple[OrphanedReference, ...] | None:
        return None if items is None else tuple(OrphanedReference(**o) for o in items)

    spaces = tuple(
        DeltaspaceStats(**{**s, "orphaned_references": orphans(s["orphaned_references"])}) for s in data["deltaspaces"]
    )
    return BucketStats(**{**data, "orphaned_references": orphans(data["orphaned_references"]), "deltaspaces": spaces})
