"""Find releases in a deltaspace: logical objects matching a pattern, newer by time and/or version.

Versions are parsed from file names and compared as versions (1.10.0 > 1.9.2; 2.0.0rc1 < 2.0.0), not as
strings. Listing is narrowed to the pattern's fixed leading part (S3 prefix) and reads no per-object
metadata; only the newest release is HEADed, for its SHA-256 and original size.
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from fnmatch import fnmatchcase
from typing import Any

from deltaglider_core.errors import InvalidLocation
from deltaglider_core.models import ObjectInfo, jsonable
from deltaglider_core.ops.versions import Version, parse_version
from deltaglider_core.storage.format import folder
from deltaglider_core.storage.store import DeltaStore


@dataclass(frozen=True)
class Release:
    key: str
    name: str
    version: str | None
    size: int | None
    last_modified: str | None
    sha256: str | None = None
    bucket: str = ""

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    def to_dict(self) -> dict[str, Any]:
        return {**jsonable(asdict(self)), "uri": self.uri}


def literal_prefix(pattern: str) -> str:
    """The part of a glob before its first wildcard (narrows the S3 listing)."""
    match = re.search(r"[*?\[]", pattern)
    return pattern if match is None else pattern[: match.start()]


def _as_datetime(value: _dt.datetime | str | None, name: str = "newer_than") -> _dt.datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = _dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError as exc:
            raise InvalidLocation(f"{name}={value!r} is not an ISO 8601 date-time.") from exc
    return value if value.tzinfo else value.replace(tzinfo=_dt.timezone.utc)


@dataclass(frozen=True)
class ReleaseQuery:
    """Which objects are releases, and which of them are new."""

    bucket: str
    prefix: str
    pattern: str = "*"
    regex: str | None = None
    newer_than: _dt.datetime | str | None = None
    after_version: str | None = None
    up_to: _dt.datetime | str | None = None

    def matches(self, name: str) -> bool:
        if self.regex is not None:
            return re.search(self.regex, name) is not None
        return fnmatchcase(name, self.pattern)

    def is_new(self, obj: ObjectInfo, version: Version | None) -> bool:
        threshold = _as_datetime(self.newer_than, "newer_than")
        if threshold is not None and (obj.last_modified is None or obj.last_modified <= threshold):
            return False
        limit = _as_datetime(self.up_to, "up_to")  # (newer_than, up_to]: a release falls in one data interval
        if limit is not None and (obj.last_modified is None or obj.last_modified > limit):
            return False
        if self.after_version:
            floor = parse_version(self.after_version)
            if floor is None:
                raise InvalidLocation(f"after_version={self.after_version!r} does not look like a version.")
            if version is None or version <= floor:
                return False
        return True


def _order(item: tuple[ObjectInfo, Version | None]) -> tuple[Any, ...]:
    obj, version = item
    stamp = obj.last_modified.timestamp() if obj.last_modified else 0.0
    return (version is not None, version or Version((), 0, 0, 0), stamp, obj.key)


def find_releases(store: DeltaStore, query: ReleaseQuery) -> list[Release]:
    """All new releases, oldest version first (the newest last), the newest with its SHA-256."""
    base = folder(query.prefix)
    narrowed = base + (literal_prefix(query.pattern) if query.regex is None else "")
    candidates: list[tuple[ObjectInfo, Version | None]] = []
    for obj in store.list(query.bucket, narrowed, recursive=False, with_metadata=False):
        name = obj.key.rpartition("/")[2]
        if not obj.key.startswith(base) or "/" in obj.key[len(base) :] or not query.matches(name):
            continue
        version = parse_version(name)
        if query.is_new(obj, version):
            candidates.append((obj, version))
    candidates.sort(key=_order)
    releases = [_release(query.bucket, obj, version) for obj, version in candidates]
    if releases:
        info = store.head(query.bucket, releases[-1].key)
        releases[-1] = Release(
            info.key,
            releases[-1].name,
            releases[-1].version,
            info.original_size,
            releases[-1].last_modified,
            info.sha256,
            query.bucket,
        )
    return releases


def _release(bucket: str, obj: ObjectInfo, version: Version | None) -> Release:
    return Release(
        bucket=bucket,
        key=obj.key,
        name=obj.key.rpartition("/")[2],
        version=str(version) if version else None,
        size=obj.original_size,
        last_modified=obj.last_modified.isoformat() if obj.last_modified else None,
    )


def payload(releases: Iterable[Release]) -> dict[str, Any]:
    """The XCom / TriggerEvent payload: the newest release and all new ones in version order."""
    found = [r.to_dict() for r in releases]
    return {"newest": found[-1] if found else None, "releases": found, "count": len(found)}
