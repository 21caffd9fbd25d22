from __future__ import annotations

import pytest
from deltaglider_core import InvalidLocation
from deltaglider_core.storage.format import (
    Location,
    base_generation,
    is_internal_key,
    logical_key,
    meta_get,
    parse_s3_url,
    utc_timestamp,
    validate_bucket,
    validate_logical_key,
)


@pytest.mark.parametrize(
    "spelling", ["dg-file-sha256", "dg_file_sha256", "file_sha256", "file-sha256", "DG-FILE-SHA256"]
)
def test_meta_get_accepts_every_legacy_spelling(spelling: str) -> None:
    assert meta_get({spelling: "abc"}, "file-sha256") == "abc"


def test_meta_get_prefers_current_spelling_and_ignores_empty() -> None:
    assert meta_get({"dg-ref-key": "a/reference.bin", "ref_key": "old"}, "ref-key") == "a/reference.bin"
    assert meta_get({"dg-ref-key": "", "ref_key": "old"}, "ref-key") == "old"
    assert meta_get({}, "ref-key") is None


@pytest.mark.parametrize(
    ("key", "fragment"),
    [
        ("releases/reference.bin", "'reference.bin' is reserved"),
        ("releases/app.zip.delta", "'.delta' are reserved"),
        ("releases/.dg-bases/0001/x.zip", "reserved for internal"),
        (".deltaglider/stats.json", "reserved for internal"),
        ("releases/", "must name a file"),
        ("/abs.zip", "must not start with '/'"),
    ],
)
def test_reserved_and_malformed_keys_are_rejected(key: str, fragment: str) -> None:
    with pytest.raises(InvalidLocation) as err:
        validate_logical_key("my-bucket", key)
    assert fragment in str(err.value)
    assert f"s3://my-bucket/{key}" in str(err.value)


def test_bucket_names_are_checked() -> None:
    with pytest.raises(InvalidLocation, match="Invalid bucket name 'Bad_Bucket!'"):
        validate_logical_key("Bad_Bucket!", "a.zip")


def test_location_layout() -> None:
    loc = Location("b", "releases/app/app-1.0.zip")
    assert loc.prefix == "releases/app"
    assert loc.delta_key == "releases/app/app-1.0.zip.delta"
    assert loc.reference_key == "releases/app/reference.bin"
    assert loc.base_key(0) == "releases/app/reference.bin"
    assert loc.base_key(3) == "releases/app/.dg-bases/0003/reference.bin"
    root = Location("b", "top.zip")
    assert root.reference_key == "reference.bin"
    assert root.children_prefix == ""


def test_base_generation_and_logical_keys() -> None:
    assert base_generation("a/reference.bin") == 0
    assert base_generation("reference.bin") == 0
    assert base_generation("a/.dg-bases/0012/reference.bin") == 12
    assert base_generation("a/b.zip") is None
    assert logical_key("a/b.zip.delta") == "a/b.zip"
    assert logical_key("a/b.zip") == "a/b.zip"
    assert logical_key("a/reference.bin") is None
    assert logical_key("a/.dg-bases/0001/reference.bin") is None
    assert is_internal_key(".deltaglider/cache/x")


def test_parse_s3_url() -> None:
    assert parse_s3_url("s3://bkt/a/b/") == ("bkt", "a/b/")
    assert parse_s3_url("s3://bkt") == ("bkt", "")
    for bad in ("bkt/a", "http://bkt/a", "s3:///a"):
        with pytest.raises(InvalidLocation):
            parse_s3_url(bad)


def test_timestamp_format_matches_deltaglider() -> None:
    import datetime as dt

    moment = dt.datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=dt.timezone.utc)
    assert utc_timestamp(moment) == "2026-01-02T03:04:05.678901Z"


@pytest.mark.parametrize(
    ("bucket", "rule"),
    [
        ("a..b", "two adjacent periods"),
        ("192.168.5.4", "formatted as an IP address"),
        ("xn--bucket", "prefix 'xn--' is reserved"),
        ("sthree-bucket", "prefix 'sthree-' is reserved"),
        ("amzn-s3-demo-bucket", "prefix 'amzn-s3-demo-'"),
        ("my-ap-s3alias", "suffix '-s3alias' is reserved for access point aliases"),
        ("my-bucket--ol-s3", "suffix '--ol-s3'"),
        ("my.mrap", "suffix '.mrap'"),
        ("my_bucket", "contains '_'; only lowercase letters, digits, '.' and '-' are allowed"),
        ("MyBucket", "contains 'BM'"),
        ("ab", "2 characters long; bucket names have 3 to 63"),
        ("a" * 64, "64 characters long"),
        ("-bucket", "begin and end with a letter or digit"),
        ("bucket.", "begin and end with a letter or digit"),
        ("bücket", "contains 'ü'"),
    ],
)
def test_bucket_names_follow_s3_rules(bucket: str, rule: str) -> None:
    with pytest.raises(InvalidLocation) as err:
        validate_bucket(bucket)
    assert f"Invalid bucket name {bucket!r}: " in str(err.value) and rule in str(err.value)


def test_valid_and_directory_bucket_names() -> None:
    for good in ("my-artifacts", "a.b.c", "abc", "1bucket2", "bucket.192.168.5.4x"):
        assert validate_bucket(good) == good
    with pytest.raises(InvalidLocation, match="S3 Express One Zone directory bucket.*use a general purpose bucket"):
        validate_bucket("builds--usw2-az1--x-s3")
