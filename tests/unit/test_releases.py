"""Release finding: version order, patterns, newness, bounded listing."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from deltaglider_core import DeltaStore
from deltaglider_core.ops.releases import ReleaseQuery, find_releases, literal_prefix, parse_version


def test_versions_compare_as_versions() -> None:
    names = ["app-2.0.0.zip", "app-1.10.0.zip", "app-2.0.0rc1.zip", "app-1.9.2.zip", "app-2.0.0b2.zip",
             "app-2.0.0.post1.zip", "app-2.0.0.dev3.zip", "app-10.0.zip"]  # fmt: skip
    assert sorted(names, key=lambda n: parse_version(n)) == [  # type: ignore[arg-type,return-value]
        "app-1.9.2.zip", "app-1.10.0.zip", "app-2.0.0.dev3.zip", "app-2.0.0b2.zip", "app-2.0.0rc1.zip",
        "app-2.0.0.zip", "app-2.0.0.post1.zip", "app-10.0.zip",
    ]  # fmt: skip
    assert parse_version("app-1.10.0.zip") > parse_version("app-1.9.2.zip")  # type: ignore[operator]
    assert parse_version("app-2.0.zip") == parse_version("app-2.0.0.zip")
    assert str(parse_version("app-linux-x86_64-3.1.4.tar.gz")) == "3.1.4"
    assert parse_version("readme.txt") is None


def test_literal_prefix() -> None:
    assert literal_prefix("app-*.zip") == "app-"
    assert literal_prefix("app-1.[0-9].zip") == "app-1."
    assert literal_prefix("*.zip") == ""
    assert literal_prefix("exact.zip") == "exact.zip"


@pytest.fixture
def releases(moto_s3: Any, builds: Any, tmp_path: Path) -> DeltaStore:
    store = DeltaStore(moto_s3.client)
    for name in ["app-1.9.2.zip", "app-1.10.0.zip", "app-2.0.0rc1.zip", "other-5.0.zip"]:
        store.put(builds(0), moto_s3.bucket, f"rel/{name}")
    (tmp_path / "notes.txt").write_text("n")
    store.put(tmp_path / "notes.txt", moto_s3.bucket, "rel/app-notes.txt")
    store.put(builds(0), moto_s3.bucket, "rel/sub/app-9.9.9.zip")
    return store


def test_find_releases_by_version_and_pattern(moto_s3: Any, releases: DeltaStore) -> None:
    found = find_releases(releases, ReleaseQuery(moto_s3.bucket, "rel/", "app-*.zip", after_version="1.9.2"))
    assert [r.version for r in found] == ["1.10.0", "2.0.0rc1"]
    newest = found[-1]
    assert newest.key == "rel/app-2.0.0rc1.zip" and newest.sha256 and newest.size
    assert found[0].size is None  # not HEADed: listing reads no per-object metadata
    all_zips = find_releases(releases, ReleaseQuery(moto_s3.bucket, "rel/", "*.zip"))
    assert [r.name for r in all_zips] == ["app-1.9.2.zip", "app-1.10.0.zip", "app-2.0.0rc1.zip", "other-5.0.zip"]
    ranged = find_releases(releases, ReleaseQuery(moto_s3.bucket, "rel/", "app-1.[0-9].*.zip"))
    assert [r.name for r in ranged] == ["app-1.9.2.zip"]
    regex = find_releases(releases, ReleaseQuery(moto_s3.bucket, "rel/", regex=r"^app-\d+\.\d+\.\d+\.zip$"))
    assert [r.name for r in regex] == ["app-1.9.2.zip", "app-1.10.0.zip"]
    assert find_releases(releases, ReleaseQuery(moto_s3.bucket, "rel/", "*.delta")) == []
    assert find_releases(releases, ReleaseQuery(moto_s3.bucket, "rel/", "reference*")) == []


def test_newer_than(moto_s3: Any, releases: DeltaStore) -> None:
    future = dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1)
    assert find_releases(releases, ReleaseQuery(moto_s3.bucket, "rel/", "app-*.zip", newer_than=future)) == []
    past = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1)).isoformat()
    assert len(find_releases(releases, ReleaseQuery(moto_s3.bucket, "rel/", "app-*.zip", newer_than=past))) == 3
    with pytest.raises(ValueError, match="not an ISO 8601"):
        find_releases(releases, ReleaseQuery(moto_s3.bucket, "rel/", "*", newer_than="yesterday"))


def test_order_is_by_version_not_upload_time(moto_s3: Any, builds: Any) -> None:
    """Newest version uploaded first: whatever the timestamps (equal or not), version decides. Key order is
    the opposite of version order here, so neither time nor key order can pass for it."""
    store = DeltaStore(moto_s3.client)
    for name, version in [("app-10.0.zip", 2), ("app-9.0.zip", 1), ("app-9.0rc1.zip", 0)]:
        store.put(builds(version), moto_s3.bucket, f"rel/{name}")
    found = find_releases(store, ReleaseQuery(moto_s3.bucket, "rel/", "app-*.zip"))
    assert [r.name for r in found] == ["app-9.0rc1.zip", "app-9.0.zip", "app-10.0.zip"]
    assert [r.version for r in found] == ["9.0rc1", "9.0", "10.0"]


def test_newest_release_reports_its_own_hash_and_size(moto_s3: Any, builds: Any, tmp_path: Path) -> None:
    import hashlib

    store = DeltaStore(moto_s3.client)
    files = {v: builds(v, size=150_000 + 10_000 * v) for v in range(3)}
    for v, path in files.items():
        store.put(path, moto_s3.bucket, f"rel/app-1.{v}.0.zip")
    newest = find_releases(store, ReleaseQuery(moto_s3.bucket, "rel/", "app-*.zip"))[-1]
    assert newest.key == "rel/app-1.2.0.zip"
    assert newest.sha256 == hashlib.sha256(files[2].read_bytes()).hexdigest()
    assert newest.size == files[2].stat().st_size


def test_interval_bounds_give_each_release_to_exactly_one_run(moto_s3: Any, builds: Any) -> None:
    """Hourly runs that overlap (a slow run still waiting when the next starts) each look only at their own
    data interval (newer_than, up_to]: a release is reported by exactly one of them."""
    import time

    store = DeltaStore(moto_s3.client)
    store.put(builds(0), moto_s3.bucket, "rel/app-1.0.zip")
    time.sleep(1.1)  # S3 LastModified has one-second resolution: the two releases must land in different seconds
    store.put(builds(1), moto_s3.bucket, "rel/app-1.1.zip")
    first = store.head(moto_s3.bucket, "rel/app-1.0.zip").last_modified
    second = store.head(moto_s3.bucket, "rel/app-1.1.zip").last_modified
    assert first is not None and second is not None and first < second
    start, end = first - dt.timedelta(hours=1), second + dt.timedelta(hours=1)
    windows = [(start, first), (first, second), (second, end)]  # three consecutive data intervals
    found = [
        [
            r.name
            for r in find_releases(store, ReleaseQuery(moto_s3.bucket, "rel/", "app-*.zip", newer_than=lo, up_to=hi))
        ]
        for lo, hi in windows
    ]
    assert found == [["app-1.0.zip"], ["app-1.1.zip"], []]
    with pytest.raises(ValueError, match="up_to='soon' is not an ISO 8601"):
        find_releases(store, ReleaseQuery(moto_s3.bucket, "rel/", "*", up_to="soon"))
