"""Which releases an event trigger has announced, in a form small enough for Airflow's asset state store.

Airflow 3.3 warns about state values over ``[state_store] max_value_storage_bytes`` (64 KB by default), so
the state keeps the newest announced keys that fit in ``budget`` bytes plus a ``floor``: the LastModified
of the newest announced release that was left out. Every release present when the state was written had
been announced, and S3 stamps new uploads with the time they land, so anything last modified at or before
the floor was announced already. The old form (a plain list of keys) is still read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from deltaglider_core.ops import Release

BUDGET_BYTES = 60_000


@dataclass
class Announced:
    keys: set[str] = field(default_factory=set)
    floor: str | None = None  # ISO LastModified: releases modified at or before it were announced

    def covers(self, release: Release) -> bool:
        if release.key in self.keys:
            return True
        return self.floor is not None and release.last_modified is not None and release.last_modified <= self.floor

    def add(self, releases: list[Release]) -> None:
        self.keys.update(r.key for r in releases)


def pack(present: list[Release], announced: Announced, budget: int = BUDGET_BYTES) -> dict[str, Any]:
    """The state value for the releases ``present`` now (all announced), newest first within ``budget``."""
    done = sorted((r for r in present if announced.covers(r)), key=lambda r: (r.last_modified or "", r.key))
    kept: list[str] = []
    size = 100  # the envelope and the floor
    floor = announced.floor
    for release in reversed(done):
        size += len(json.dumps(release.key)) + 2
        if size > budget:
            if release.last_modified is not None:
                floor = max(floor or "", release.last_modified)
            break
        kept.append(release.key)
    return {"keys": kept, "floor": floor}


def unpack(value: Any) -> Announced | None:
    """The state read back; None when there is none (or it is not ours)."""
    if isinstance(value, list):  # the first form: every announced key
        return Announced({str(k) for k in value})
    if isinstance(value, dict) and isinstance(value.get("keys"), list):
        floor = value.get("floor")
        return Announced({str(k) for k in value["keys"]}, floor if isinstance(floor, str) else None)
    return None
