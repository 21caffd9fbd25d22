"""Deltas of decompressed contents, for the store: when to try them, which to keep, and how to read them back.

Two encodings exist (docs/format.md): ``gzip`` (:mod:`.gzip_content`, a ``.gz``/``.tgz`` file) and ``zip``
(:mod:`.zip_content`, any zip container). At write time the byte-level delta is made first; when it is
already small (``WORTH_TRYING`` of the file or less) nothing else is tried. Otherwise the content-level delta
is made too (for a zip, only when a probe on its largest changed members says decompressing can pay:
:func:`.zip_content.promising`) and kept only when it is clearly smaller (``KEEP_BELOW`` of the byte-level
one): it costs a rebuild on every read (a deflate of the contents), which a marginal saving does not repay.
Anything that goes wrong on the way (a member table that cannot be followed, no deflate setting that
reproduces the file, the temp disk filling up) leaves the byte-level delta in place.

A content delta is VCDIFF without secondary compression (the codec's), so the text added between two
versions is stored as it is; it is then compressed with xz (``dg-delta-compression: xz``) when that saves
0.5% or more (deltas up to 32 MiB: xz compresses a few MB/s). Stock xdelta3 compresses its own deltas'
sections with LZMA in a framing Python's ``lzma`` cannot write, and these deltas are ours alone anyway
(DeltaGlider cannot rebuild content deltas), so the whole delta is compressed instead.

Reading inflates (or normalises) the reference, applies the delta, rebuilds the exact file, and leaves the
SHA-256 check to the store, which names what rebuilt the file when the check fails.
"""

from __future__ import annotations

import logging
import lzma
import shutil
from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from deltaglider_core.codec.budget import full_window
from deltaglider_core.codec.vcdiff import shape
from deltaglider_core.content import gzip_content, zip_content, zip_stream
from deltaglider_core.errors import CodecError, IntegrityError
from deltaglider_core.support.limits import Cap, Enough, ReadBudget, byte_count, capped_open

GZIP_NAMES = (".gz", ".tgz")  # names whose gzip content-level delta is tried
SQUEEZE_BELOW = 0.995  # an xz-compressed content delta is stored when it is at most this share of the plain one
SQUEEZE_UP_TO = 32 << 20  # larger deltas are left plain: xz compresses a few MB/s
CHUNK = 1 << 20
PARTIAL_WINDOW = 64 << 20  # the source window when the whole source does not fit the budget (see window())
SMALLEST_WINDOW = 512 << 10  # xdelta3's smallest -B: a probe of small members costs its tables, not 1 MiB's
MARGIN = 256 << 20  # temp disk left free beyond what a content-level delta is expected to use
WORTH_TRYING = 0.01  # a byte-level delta at most this share of the file: content deltas are not tried
KEEP_BELOW = 0.9  # a content delta is kept only below this share of the byte-level delta


class Encode(Protocol):
    def __call__(self, source: Path, target: Path, delta: Path, /, *, quick: bool = False) -> str:
        """Write the delta; return the command used. ``quick``: fastest level (the zip probe's estimates)."""
        ...


Decode = Callable[[Path, Path, Path, str], None]  # (source, delta, out, what the source is) -> None


@dataclass(frozen=True)
class ContentDelta:
    command: str
    metadata: dict[str, str]  # the dg-* fields (without the prefix) that say how to rebuild the file
    delta: Path


def encode(
    reference: Path, source: Path, scratch: Path, encode_with: Encode, side: Executor, log: logging.Logger
) -> ContentDelta | None:
    """The delta of the decompressed contents of ``source`` against ``reference``'s, or None where that does
    not apply or the original would not rebuild exactly."""
    try:
        if source.name.lower().endswith(GZIP_NAMES):
            if not _room(scratch, 2 * (_gzip_size(reference) + _gzip_size(source)), source, log):
                return None
            return _gzip(reference, source, scratch, encode_with, side, log)
        if zip_content.is_zip(source) and zip_content.is_zip(reference):
            if not _room(
                scratch, zip_content.expanded_size(reference) + zip_content.expanded_size(source), source, log
            ):
                return None
            return _zip(reference, source, scratch, encode_with, log)
    except (OSError, IntegrityError) as exc:  # e.g. a reference whose contents would fill the temp disk
        log.warning("%s: no content-level delta (%s): byte-level delta", source.name, exc)
    return None


def _reference_room(scratch: Path, reference: Path) -> Cap:
    """The writer derives the reference's contents within what the temp disk holds (a reference in a shared
    bucket may be a bomb): past it, the content delta is abandoned, not the disk filled."""
    room = max(0, _free_bytes(scratch) - MARGIN)
    return Cap(room, IntegrityError(f"the contents of {reference.name} would pass the {room >> 20} MB free"))


def _gzip_size(path: Path) -> int:
    """The file plus its decompressed size as its trailer records it (modulo 4 GiB: at least 4 GiB more if
    the file is 1 GiB or larger, as gzip compresses at most ~1000:1)."""
    size = path.stat().st_size
    return size + gzip_content.recorded_size(path) + (size // (1 << 30)) * (4 << 30)


def _free_bytes(path: Path) -> int:
    return shutil.disk_usage(path).free


def _room(scratch: Path, needed: int, source: Path, log: logging.Logger) -> bool:
    free = _free_bytes(scratch)
    if free >= needed + MARGIN:
        return True
    log.info(
        "%s: a content-level delta needs about %d MB of temp disk for the decompressed contents, %d MB are free: "
        "byte-level delta", source.name, needed >> 20, free >> 20,
    )  # fmt: skip
    return False


def squeeze(content: ContentDelta) -> ContentDelta:
    """The delta compressed with xz when that saves enough (the metadata says so), else as it was."""
    if content.delta.stat().st_size > SQUEEZE_UP_TO:
        return content
    packed = content.delta.with_name(content.delta.name + ".xz")
    with open(content.delta, "rb") as src, lzma.open(packed, "wb", preset=6) as out:
        shutil.copyfileobj(src, out, CHUNK)
    if packed.stat().st_size > SQUEEZE_BELOW * content.delta.stat().st_size:
        packed.unlink()
        return content
    packed.replace(content.delta)
    return ContentDelta(content.command, {**content.metadata, "delta-compression": "xz"}, content.delta)


def _unsqueeze(where: str, meta: Mapping[str, str], delta: Path, scratch: Path, budget: ReadBudget) -> Path:
    compression = meta.get("delta-compression")
    if compression is None:
        return delta
    if compression != "xz":
        raise CodecError(
            f"{where} is compressed with {compression!r}, which this version cannot read: upgrade "
            "airflow-provider-deltaglider."
        )
    plain = scratch / "delta.plain"
    try:
        cap = budget.cap("unpacking its xz-compressed delta", budget.plain_delta)
        with lzma.open(delta, "rb") as src, capped_open(plain, cap) as out:
            shutil.copyfileobj(src, out, CHUNK)
    except (lzma.LZMAError, EOFError) as exc:
        raise IntegrityError(f"{where}: its xz-compressed delta is damaged ({exc}). Nothing was written.") from exc
    return plain


def window(source_size: int, allowed: int) -> int:
    """The source window for a content delta: the whole source when the memory budget allows it, else
    xdelta3's own default (64 MiB) or less. Measured on botocore sdists (147 MB of tar): a 128 MiB window,
    part of the source, gives 12-17% larger deltas than 64 MiB, which matches a whole-source window. A source
    of at most 512 KiB (the zip probe's members) gets xdelta3's smallest window: 3 ms an encode, not 9."""
    if source_size <= SMALLEST_WINDOW:
        return SMALLEST_WINDOW
    whole = full_window(source_size)
    return whole if whole <= allowed else min(allowed, PARTIAL_WINDOW)


def worth_trying(byte_delta: int, size: int) -> bool:
    return byte_delta > WORTH_TRYING * size


def better(content: ContentDelta, byte_delta: int) -> bool:
    return content.delta.stat().st_size < KEEP_BELOW * byte_delta


def _gzip(
    reference: Path, source: Path, scratch: Path, encode_with: Encode, side: Executor, log: logging.Logger
) -> ContentDelta | None:
    if gzip_content.header_length(reference) is None:
        return None  # the reference is not gzip: no contents to compare with
    found = gzip_content.inflate(source, scratch / "content")
    if found is None:
        return None
    # The search (a full deflate to verify) runs while the reference is inflated and the contents encoded.
    search = side.submit(gzip_content.find_recipe, source, scratch / "content", *found)
    delta = scratch / "content.delta"
    command = None
    if gzip_content.inflate(reference, scratch / "reference.content", _reference_room(scratch, reference)) is not None:
        command = encode_with(scratch / "reference.content", scratch / "content", delta)
    recipe = search.result()
    if recipe is None:
        log.info("%s: no deflate setting reproduces its gzip stream: byte-level delta", source.name)
        return None
    if command is None:
        return None
    fields = {"content-encoding": gzip_content.ENCODING, "gzip-rebuild": recipe.to_meta()}
    return ContentDelta(command, {**fields, **_sizes(scratch)}, delta)


def _zip(reference: Path, source: Path, scratch: Path, encode_with: Encode, log: logging.Logger) -> ContentDelta | None:
    (scratch / "zip-target").mkdir()
    (scratch / "zip-reference").mkdir()
    if not zip_content.promising(reference, source, scratch / "zip-target", encode_with):
        log.info("%s: the members it changed were rebuilt rather than edited: byte-level delta", source.name)
        return None
    # The target first (changed members decompressed, deflated again to verify them): it says which of the
    # reference's members to expand, so the reference's stream stays about as small as the archives.
    plan = zip_content.normalise_target(source, scratch / "content", scratch / "zip-target", reference)
    if plan is None or not zip_content.normalise_reference(
        reference, scratch / "reference.content", scratch / "zip-reference", plan, _reference_room(scratch, reference)
    ):
        log.info("%s: its zip member table cannot be followed: byte-level delta", source.name)
        return None
    command = encode_with(scratch / "reference.content", scratch / "content", scratch / "content.vcdiff")
    delta = scratch / "content.delta"
    zip_stream.write_delta(plan, scratch / "content.vcdiff", delta)
    fields = {"content-encoding": zip_content.ENCODING, "zip-rebuild": zip_content.META}
    return ContentDelta(command, {**fields, **_sizes(scratch)}, delta)


def _sizes(scratch: Path) -> dict[str, str]:
    """What a reader holds its stages to: the contents the delta rebuilds and the reference's it reads."""
    return {
        "content-size": str((scratch / "content").stat().st_size),
        "source-size": str((scratch / "reference.content").stat().st_size),
    }


def rebuild(
    where: str,
    reference_name: str,
    meta: Mapping[str, str],
    reference: Path,
    delta: Path,
    out: Path,
    scratch: Path,
    decode: Decode,
    budget: ReadBudget,
    require_space: Callable[[int], None],
) -> str:
    """Write the original file of a content-level delta to ``out``; return why a SHA-256 mismatch could
    happen (what rebuilt it), for the store's message. ``meta``: the object's dg-* fields without the prefix.
    No stage writes past what ``budget`` allows it (``decode`` holds the contents to it); the reference's
    contents are derived up to ``dg-source-size``, or only as far as the delta reaches into them."""
    encoding = meta.get("content-encoding")
    against = f"the contents of {reference_name}"
    delta = _unsqueeze(where, meta, delta, scratch, budget)
    file_cap = budget.cap("rebuilding the file", budget.rebuilt)
    if encoding == zip_content.ENCODING and meta.get("zip-rebuild") == zip_content.META:
        (scratch / "zip").mkdir()
        try:
            plan = zip_stream.read_delta(delta, scratch / "content.vcdiff")
        except zip_stream.StreamDamaged as exc:
            raise IntegrityError(f"{where}: {exc}. Nothing was written.") from exc
        reference_cap = _reference_cap(where, meta, scratch / "content.vcdiff", budget, require_space)
        try:
            readable = zip_content.normalise_reference(
                reference, scratch / "reference.content", scratch / "zip", plan, reference_cap
            )
        except Enough:
            readable = True  # as far as the delta reaches: the rest is never read
        if not readable:
            raise IntegrityError(f"{where}: its reference {reference_name} is not a readable zip now.")
        decode(scratch / "reference.content", scratch / "content.vcdiff", scratch / "content", against)
        try:
            made_by = zip_stream.rebuild(scratch / "content", out, scratch / "zip", file_cap)
        except gzip_content.RecipeUnavailable as exc:  # a program the rebuild needs is missing
            raise CodecError(f"{where} cannot be rebuilt here: {exc}. Nothing was written.") from exc
        except zip_stream.StreamDamaged as exc:
            raise IntegrityError(f"{where}: the archive cannot be rebuilt ({exc}). Nothing was written.") from exc
        return f"it was deflated with {made_by} and this reader's deflate output differs"
    if encoding == gzip_content.ENCODING and meta.get("gzip-rebuild") is not None:
        try:
            recipe = gzip_content.Recipe.from_meta(meta.get("gzip-rebuild") or "")
        except (ValueError, KeyError, TypeError) as exc:
            message = f"{where}: its dg-gzip-rebuild metadata is damaged ({exc}). Nothing was written."
            raise IntegrityError(message) from exc
        reference_cap = _reference_cap(where, meta, delta, budget, require_space)
        try:
            inflated = gzip_content.inflate(reference, scratch / "reference.content", reference_cap) is not None
        except Enough:
            inflated = True
        if not inflated:
            raise IntegrityError(f"{where}: its reference {reference_name} is not a gzip file any more.")
        decode(scratch / "reference.content", delta, scratch / "content", against)
        try:
            gzip_content.rebuild(scratch / "content", recipe, out, file_cap)
        except gzip_content.RecipeUnavailable as exc:
            raise CodecError(f"{where} cannot be rebuilt here: {exc}. Nothing was written.") from exc
        return gzip_content.mismatch_message(recipe)
    raise CodecError(
        f"{where} is a content-level delta of kind {encoding!r} ({meta.get('zip-rebuild') or ''}), which this "
        "version cannot rebuild: upgrade airflow-provider-deltaglider."
    )


def _reference_cap(
    where: str, meta: Mapping[str, str], vcdiff: Path, budget: ReadBudget, require_space: Callable[[int], None]
) -> Cap:
    """The reference's contents: exactly ``dg-source-size`` where the writer recorded it, else (a quiet cap)
    only as far as the delta's windows reach into them. Either must fit the temp disk."""
    recorded = byte_count(meta.get("source-size"))
    try:
        limit = recorded if recorded is not None else shape(vcdiff).source_extent
    except CodecError as exc:
        raise IntegrityError(f"{where}: its delta is not VCDIFF ({exc}). Nothing was written.") from exc
    require_space(limit)
    return Cap(limit, budget.exceeded("decompressing its reference", limit), quiet=recorded is None)
