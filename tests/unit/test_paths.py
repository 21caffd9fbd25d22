"""Local paths from object keys never leave the destination: '..', absolute keys, backslashes, symlinks."""

from __future__ import annotations

from pathlib import Path

import pytest
from deltaglider_core.support.paths import UnsafeKey, safe_local_path


def test_plain_keys_resolve_inside(tmp_path: Path) -> None:
    assert safe_local_path(tmp_path, "a/b/c.zip") == tmp_path.resolve() / "a" / "b" / "c.zip"
    assert safe_local_path(tmp_path, "c..d.zip") == tmp_path.resolve() / "c..d.zip"  # dots inside a name are fine


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("../x.zip", "'.' or '..' segments"),
        ("a/../../x.zip", "'.' or '..' segments"),
        ("a/./x.zip", "'.' or '..' segments"),
        ("/etc/passwd", "absolute path"),
        ("a\\..\\x.zip", "backslash"),
    ],
)
def test_escaping_keys_are_refused_with_the_reason(tmp_path: Path, key: str, reason: str) -> None:
    with pytest.raises(UnsafeKey, match=f"Refusing s3://bkt/pre/{_re(key)}: .*{_re(reason)}"):
        safe_local_path(tmp_path, key, bucket="bkt", key=f"pre/{key}")


def test_dotdot_that_stays_inside_is_still_refused(tmp_path: Path) -> None:
    """``a/../b`` lands inside the root, but a key with '..' is refused on principle (and by resolution)."""
    (tmp_path / "a").mkdir()
    with pytest.raises(UnsafeKey, match="'..' segments"):
        safe_local_path(tmp_path, "a/../b.zip", bucket="bkt")


def test_symlinked_directory_leading_out_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "dest"
    outside = tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (root / "link").symlink_to(outside, target_is_directory=True)
    with pytest.raises(UnsafeKey, match=r"resolves to .*outside.*symlink in the path"):
        safe_local_path(root, "link/x.zip", bucket="bkt", key="p/link/x.zip")
    assert list(outside.iterdir()) == []


def test_symlinked_file_leading_out_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "dest"
    root.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("keep")
    (root / "x.zip").symlink_to(victim)
    with pytest.raises(UnsafeKey, match="outside"):
        safe_local_path(root, "x.zip", bucket="bkt")
    assert victim.read_text() == "keep"


def test_symlink_inside_the_root_is_followed(tmp_path: Path) -> None:
    root = tmp_path / "dest"
    (root / "real").mkdir(parents=True)
    (root / "alias").symlink_to(root / "real", target_is_directory=True)
    assert safe_local_path(root, "alias/x.zip") == (root / "real" / "x.zip").resolve()


def _re(text: str) -> str:
    import re

    return re.escape(text)


def test_keys_with_empty_segments_never_take_another_keys_place(tmp_path: Path) -> None:
    """``dup//a`` and ``dup/a/`` would both land on ``dup/a`` (#28, finding 9): they are refused, and the real
    ``dup/a`` is planned (on AWS, which keeps ``//``, all three keys can exist)."""
    from deltaglider_core.support.paths import plan_local_files

    items = [("p/dup//a", "dup//a"), ("p/dup/a", "dup/a"), ("p/dup/a/", "dup/a/")]
    planned, refused = plan_local_files(tmp_path, items, bucket="bkt")
    assert planned == [("p/dup/a", tmp_path.resolve() / "dup" / "a")]
    assert len(refused) == 2 and all("empty segment" in r for r in refused)
    assert "s3://bkt/p/dup//a" in refused[0] and "s3://bkt/p/dup/a/" in refused[1]
