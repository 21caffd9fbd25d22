"""Which files get deltas, the max_ratio rule, and when to start a fresh reference (re-basing)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

#: DeltaGlider 6's archive extensions plus package formats that are zip/ar containers too.
DEFAULT_DELTA_EXTENSIONS: frozenset[str] = frozenset(
    {
        ".zip", ".tar", ".tgz", ".tar.gz", ".tar.bz2", ".tar.xz", ".gz", ".bz2", ".xz", ".7z", ".rar",
        ".dmg", ".iso", ".pkg", ".deb", ".rpm", ".apk", ".jar", ".war", ".ear",
        ".whl", ".nupkg", ".aab", ".ipa", ".msi",
    }
)  # fmt: skip

DEFAULT_MAX_RATIO = 0.5

#: Re-base once rent reaches this multiple of the price. The rent is overstated (a fresh reference drifts
#: too, so its deltas would not stay at ``fresh``); 1.25 compensates. Chosen on two corpora (30 nightly
#: 1.7 MB builds; 9 drifting 16 MB archives), where 1.25-1.5 stored least; see docs/format.md.
REBASE_THRESHOLD = 1.25


def normalise_extensions(extensions: Iterable[str]) -> frozenset[str]:
    return frozenset(e.lower() if e.startswith(".") else f".{e.lower()}" for e in extensions)


def is_delta_eligible(name: str, extensions: frozenset[str]) -> bool:
    """True when the file name ends with one of ``extensions`` (case-insensitive)."""
    lowered = name.lower()
    return any(lowered.endswith(ext) for ext in extensions)


def delta_is_poor(delta_size: int, file_size: int, max_ratio: float) -> bool:
    """The max_ratio rule: a delta larger than ``max_ratio`` of the file is not worth keeping."""
    return file_size > 0 and delta_size / file_size > max_ratio


@dataclass(frozen=True)
class BaseHistory:
    """Sizes of the deltas already stored against the current reference (its zero-diff excluded)."""

    delta_sizes: tuple[int, ...]


def should_rebase(history: BaseHistory, delta_size: int, file_size: int) -> bool:
    """Rent-or-buy: start a fresh reference once the excess paid for a stale one covers a new one.

    The delta of the first version after a reference approximates what a fresh reference would give
    (``fresh``). Every delta since pays ``size - fresh`` of "rent" for keeping the stale reference.
    Buying costs a new reference (the file itself) instead of this delta: ``file_size - delta_size``.
    Re-base when the rent paid, this delta's included, reaches ``REBASE_THRESHOLD`` times that price.
    Like ski rental, this stays within a small constant factor of the best offline choice of re-basing
    points, and needs no extra encode.
    """
    if not history.delta_sizes:
        return False
    fresh = min(*history.delta_sizes, delta_size)
    rent = sum(size - fresh for size in history.delta_sizes) + (delta_size - fresh)
    price = file_size - delta_size
    return price > 0 and rent >= REBASE_THRESHOLD * price


#: Archives stored whole because their delta was poor, against a reference no delta uses, before that
#: reference is replaced (an unrelated first upload must not poison a prefix for good).
POISONED_AFTER = 2


def reference_is_poor(
    reference_size: int, file_size: int, max_ratio: float, good_deltas: int, poor_uploads: int
) -> bool:
    """A reference that cannot serve its deltaspace, checked when a delta against it came out poor.

    Far smaller than the file (an empty or tiny first upload), or used by no delta while archives keep
    arriving whole (an unrelated first upload). Replacing it with this file costs nothing extra, as the file
    would be stored whole anyway; a reference that serves deltas is kept, so one unrelated file never takes a
    series' reference.
    """
    if reference_size < max_ratio * file_size:
        return True
    return good_deltas == 0 and poor_uploads + 1 >= POISONED_AFTER
