"""A logical key's two forms, and how a writer switches between them without losing a concurrent write.

Logical object ``x`` is stored as a delta (``x.delta``) or whole (``x``). Readers try ``x.delta`` first, so
while both exist the delta *is* the object and the whole copy is only wasted space. A writer of one form
removes the other form by one rule, the same for both forms:

    before its PUT, HEAD the other form and note its ETag; after its PUT, delete exactly that version
    (``DeleteObject`` with ``If-Match``), never a version it did not see before writing.

Why no acknowledged write is lost (two puts of one key; a delete is ordinary last-writer-wins):

* Each delete removes a version whose PUT completed before the deleter's own PUT started: an older write.
  A newer version at that key fails the precondition and stays.
* Puts that do not overlap: the later one's HEAD runs after the earlier one returned (read-after-write
  consistency), sees its version and deletes it; the earlier one has returned and deletes nothing more.
* Puts that overlap cannot delete each other's writes: that needs each PUT to have completed before the
  other started. If both forms remain, readers take the delta: the overlapping puts are ordered delta last,
  and the stale whole copy costs space until the key's next put removes it.

Where the server ignores ``If-Match`` on DELETE (probed once per bucket, only when a delete is due), a whole
write that must remove a delta is refused before anything is written unless ``allow_unconditional_writes``
accepts the risk; a delta writer leaves the old whole copy (harmless: readers take the delta) and warns.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

from deltaglider_core.errors import StorageError
from deltaglider_core.storage.format import INTERNAL_DIR
from deltaglider_core.transport.s3 import S3

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Seen:
    """The other form of a key as a writer saw it before its PUT."""

    key: str
    etag: str | None  # None: there was none
    conditional: bool = True  # False: the server ignores If-Match on DELETE (and the risk was accepted)


class Forms:
    """The form-switch protocol above, for one store."""

    def __init__(
        self, s3: S3, *, allow_unconditional_writes: bool = False, logger: logging.Logger | None = None
    ) -> None:
        self.log = logger or log  # the store's logger: a task logger given to the store hears these too
        self.s3 = s3
        self.allow_unconditional_writes = allow_unconditional_writes

    def _conditional(self, bucket: str) -> bool:
        probe = f"{INTERNAL_DIR}/probe/conditional-delete-{uuid.uuid4().hex}"
        return self.s3.honours_if_match_delete(bucket, probe)

    def before(self, bucket: str, other_key: str, *, shadows: bool) -> Seen:
        """Note the other form before a PUT. ``shadows``: the other form would hide this write from readers (a
        delta over a whole write), so a server that cannot delete it safely is refused here, before writing."""
        head = self.s3.head(bucket, other_key)
        if head is None:
            return Seen(other_key, None)
        if head.etag and self._conditional(bucket):
            return Seen(other_key, head.etag)
        if not shadows or self.allow_unconditional_writes:
            return Seen(other_key, head.etag or "", conditional=False)
        raise StorageError(
            f"s3://{bucket}/{other_key} would have to be deleted to store its file whole, but s3://{bucket} ignores "
            "conditional deletes (DELETE with If-Match), so a concurrent upload of the same key could be deleted "
            "with it. Nothing was written. Use a server that honours conditional deletes (AWS S3, SeaweedFS), "
            "or accept the risk with allow_unconditional_writes=True if only one task at a time writes each key."
        )

    def noted(self, bucket: str, key: str, etag: str | None) -> Seen:
        """What this store just wrote at ``key`` (its ETag), noted so that ``after`` can take it back: deleted
        only if unchanged (If-Match), or not at all where the server ignores conditional deletes."""
        if not etag or not self._conditional(bucket):
            return Seen(key, None)
        return Seen(key, etag)

    def after(self, bucket: str, seen: Seen) -> None:
        """After the PUT: delete the version noted before it, unless it changed meanwhile (then it stays)."""
        if seen.etag is None:
            return
        if seen.conditional:
            if not self.s3.delete_if_match(bucket, seen.key, seen.etag):
                self.log.info("s3://%s/%s changed while its key was written in the other form: kept", bucket, seen.key)
        elif self.allow_unconditional_writes:
            self.log.warning(
                "s3://%s ignores conditional deletes (If-Match): s3://%s/%s is deleted anyway because "
                "allow_unconditional_writes is set; a concurrent upload of the same key could be lost",
                bucket, bucket, seen.key,
            )  # fmt: skip
            self.s3.delete(bucket, seen.key)
        else:
            self.log.warning(
                "s3://%s/%s is left beside its new delta: s3://%s ignores conditional deletes, so deleting it could "
                "remove a concurrent upload (readers take the delta; allow_unconditional_writes deletes it)",
                bucket, seen.key, bucket,
            )  # fmt: skip
