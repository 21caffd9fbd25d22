"""Versions parsed from file names and compared as versions (1.10.0 > 1.9.2; 2.0.0rc1 < 2.0.0)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

_VERSION_RE = re.compile(
    r"(?<![0-9])(\d+(?:\.\d+)*)(?:[-_.]?(dev|alpha|beta|pre|rc|a|b|c)[-_.]?(\d*))?(?:[-_.]?(post)[-_.]?(\d*))?",
    re.IGNORECASE,
)
_STAGES = {"dev": 0, "a": 1, "alpha": 1, "b": 2, "beta": 2, "c": 3, "rc": 3, "pre": 3}
_FINAL = 4


@dataclass(frozen=True, order=True)
class Version:
    """A comparable version: release numbers (trailing zeros ignored), then pre/final/post stage."""

    release: tuple[int, ...]
    stage: int
    stage_number: int
    post: int
    text: str = field(default="", compare=False)

    def __str__(self) -> str:
        return self.text


def parse_version(name: str) -> Version | None:
    """The version in a file name, e.g. ``app-x86_64-1.10.0rc2.zip`` -> 1.10.0rc2.

    Of all number runs, the one with the most dotted components wins (the last on a tie), so
    architecture tags such as ``x86_64`` are not mistaken for the version.
    """
    matches = list(_VERSION_RE.finditer(name))
    if not matches:
        return None
    match = max(reversed(matches), key=lambda m: m.group(1).count("."))
    numbers = [int(p) for p in match.group(1).split(".")]
    while len(numbers) > 1 and numbers[-1] == 0:
        numbers.pop()
    stage = _STAGES[match.group(2).lower()] if match.group(2) else _FINAL
    stage_number = int(match.group(3)) if match.group(3) else 0
    post = int(match.group(5) or 0) + 1 if match.group(4) else 0
    return Version(tuple(numbers), stage, stage_number, post, match.group(0).strip("-_."))


def version_order(name: str) -> tuple[Any, ...]:
    """Sort key: names with a version first, in version order, then the rest by name."""
    version = parse_version(name)
    return (version is None, version or Version((), 0, 0, 0), name)
