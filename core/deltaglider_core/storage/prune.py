"""Prune: remove references no delta needs, without ever removing one a delta needs or is about to need.

``delete()`` removes only the logical object; references are removed here, in two phases a grace period
apart (see docs/format.md, "Concurrency protocol"):

1. **Trash.** A reference that no delta names and that is older than the grace period is copied
   (server-side) to ``.deltaglider/trash/<key>`` and then deleted.
2. **Finish, a grace period later.** A trash entry older than the grace period is purged only when no
   delta names its bytes (``dg-ref-key`` and ``dg-ref-sha256``). One a delta names is put back at its key
   when the key is free (a writer raced the trashing), removed when the key holds those very bytes again,
   and **held** when the key now holds another reference (re-created meanwhile): readers of the deltas that
   name it keep reading it from the trash (``References.materialise`` falls back to it on a missing key and
   on a SHA-256 mismatch), and writers never create a reference over a key whose trash entry is live
   (``References.create`` takes the next generation instead).

Why no write is lost: a writer stores its delta first and then checks that its reference exists, restoring
it from its local copy if not. If prune's delete lands after that check, the delta was already stored when
prune finishes the entry a grace period later, so prune's second listing sees it and restores the
reference; until then readers fall back to the trash copy (``References.materialise``). A writer whose check
comes after prune's delete restores the reference itself.
"""

from __future__ import annotations

import datetime as _dt
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

from deltaglider_core.models import jsonable
from deltaglider_core.storage.format import (
    DELTA_SUFFIX,
    TRASH_PREFIX,
    default_reference,
    folder,
    is_internal_key,
    is_reference_key,
    meta_get,
)
from deltaglider_core.transport.s3 import S3, Listed

DEFAULT_GRACE = _dt.timedelta(hours=24)


@dataclass(frozen=True)
class PruneReport:
    bucket: str
    prefix: str
    dry_run: bool
    grace_s: float
    trashed: tuple[str, ...]  # orphaned references moved to the trash (phase 1)
    restored: tuple[str, ...]  # trashed references a delta named after all: put back (phase 2)
    purged: tuple[str, ...]  # trash entries removed for good (phase 2)
    kept_recent: tuple[str, ...]  # orphans younger than the grace period (or whose trash slot is taken)
    duration_s: float
    held: tuple[str, ...] = ()  # trash entries deltas still need while their key holds another reference

    def to_dict(self) -> dict[str, Any]:
        return dict(jsonable(asdict(self)))


ANY_BYTES = ""  # a delta that records no dg-ref-sha256 names whatever its reference key holds


def named_references(s3: S3, bucket: str, deltas: Iterable[Listed], workers: int = 16) -> dict[str, set[str]]:
    """Every reference key some delta names (``dg-ref-key``, else its deltaspace's ``reference.bin``), with the
    SHA-256s they name it by (``dg-ref-sha256``; ``ANY_BYTES`` for a delta that records none)."""

    def ref_of(obj: Listed) -> tuple[str, str] | None:
        head = s3.head(bucket, obj.key)
        if head is None:  # deleted since the listing: it needs nothing
            return None
        key = meta_get(head.metadata, "ref-key") or default_reference(obj.key.rpartition("/")[0])
        return key, meta_get(head.metadata, "ref-sha256") or ANY_BYTES

    named: dict[str, set[str]] = {}
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for found in pool.map(ref_of, deltas):
            if found is not None:
                named.setdefault(found[0], set()).add(found[1])
    return named


def _needed(shas: set[str] | None, sha256: str | None) -> bool:
    """Whether deltas naming a key by ``shas`` need the bytes ``sha256`` (None: not recorded, so assume so)."""
    if not shas:
        return False
    return sha256 is None or ANY_BYTES in shas or sha256 in shas


def prune(
    s3: S3,
    bucket: str,
    prefix: str = "",
    *,
    grace: _dt.timedelta = DEFAULT_GRACE,
    dry_run: bool = False,
    now: _dt.datetime | None = None,
    workers: int = 16,
) -> PruneReport:
    """Trash references no delta names (older than ``grace``) and finish trash entries older than ``grace``."""
    started = time.monotonic()
    s3.ensure_bucket(bucket)
    cutoff = (now or _dt.datetime.now(_dt.timezone.utc)) - grace
    base = folder(prefix)
    references: list[Listed] = []
    deltas: list[Listed] = []
    for page in s3.pages(bucket, base):
        for obj in page.objects:
            if is_reference_key(obj.key):
                references.append(obj)
            elif obj.key.endswith(DELTA_SUFFIX) and not is_internal_key(obj.key):
                deltas.append(obj)
    trash = [obj for page in s3.pages(bucket, TRASH_PREFIX + base) for obj in page.objects]
    named = named_references(s3, bucket, deltas, workers)
    restored, purged, held = [], [], []
    occupied = {entry.key for entry in trash}
    for entry in trash:  # phase 2 first: entries trashed by an earlier run
        if entry.last_modified > cutoff:
            continue
        original = entry.key[len(TRASH_PREFIX) :]
        trashed_head = s3.head(bucket, entry.key)
        if trashed_head is None:  # another prune finished it
            occupied.discard(entry.key)
            continue
        sha = meta_get(trashed_head.metadata, "file-sha256")
        if not _needed(named.get(original), sha):
            purged.append(entry.key)
        else:
            current = s3.head(bucket, original)
            if current is not None and (sha is None or meta_get(current.metadata, "file-sha256") != sha):
                held.append(entry.key)  # the key was re-created with other bytes: deltas read these from here
                continue
            restored.append(original)
            if not dry_run and current is None:
                s3.copy(bucket, entry.key, original, trashed_head)
        if not dry_run:
            s3.delete(bucket, entry.key)
            occupied.discard(entry.key)
    trashed, recent = [], []
    for ref in references:  # phase 1
        if ref.key in named:
            continue
        if ref.last_modified > cutoff or TRASH_PREFIX + ref.key in occupied:  # never trash over a live entry
            recent.append(ref.key)
            continue
        trashed.append(ref.key)
        if not dry_run:
            head = s3.head(bucket, ref.key)
            if head is not None:
                s3.copy(bucket, ref.key, TRASH_PREFIX + ref.key, head)
                s3.delete(bucket, ref.key)
    return PruneReport(
        bucket=bucket,
        prefix=base,
        dry_run=dry_run,
        grace_s=grace.total_seconds(),
        trashed=tuple(trashed),
        restored=tuple(restored),
        purged=tuple(purged),
        kept_recent=tuple(recent),
        duration_s=round(time.monotonic() - started, 3),
        held=tuple(held),
    )
