"""What stock xdelta3's application header declares about external compression, read here; our own deltas
(the library has no external compression) declare none, so they never take that path."""

from __future__ import annotations

import gzip
import subprocess
from pathlib import Path

import pytest
from deltaglider_core.codec.xdelta3 import default_codec
from deltaglider_core.content import external as external_compression
from deltaglider_core.content.external import ExternalCompression


def _gz(path: Path, text: str) -> Path:
    with open(path, "wb") as raw, gzip.GzipFile("", "wb", 6, raw, mtime=0) as gz:
        gz.write(text.encode() * 2000)
    return path


def test_stock_xdelta3_declares_gzip_on_both_sides(stock_xdelta3: str, tmp_path: Path) -> None:
    a, b = _gz(tmp_path / "a.tar.gz", "alpha "), _gz(tmp_path / "b.tar.gz", "alpha beta ")
    subprocess.run([stock_xdelta3, "-e", "-9", "-f", "-s", str(a), str(b), str(tmp_path / "d")], check=True)
    assert external_compression.declared(tmp_path / "d") == ExternalCompression("gzip", "gzip")
    plain = tmp_path / "plain.bin"
    plain.write_bytes(b"alpha " * 2000)
    subprocess.run([stock_xdelta3, "-e", "-9", "-f", "-s", str(plain), str(b), str(tmp_path / "d2")], check=True)
    assert external_compression.declared(tmp_path / "d2") == ExternalCompression(None, "gzip")
    subprocess.run([stock_xdelta3, "-e", "-9", "-D", "-f", "-s", str(a), str(b), str(tmp_path / "d3")], check=True)
    assert external_compression.declared(tmp_path / "d3") is None  # -D: bytes as they are


def test_our_deltas_of_gzip_files_declare_nothing(tmp_path: Path) -> None:
    a, b = _gz(tmp_path / "a.gz", "alpha "), _gz(tmp_path / "b.gz", "alpha beta ")
    default_codec().encode(a, b, tmp_path / "d")
    assert external_compression.declared(tmp_path / "d") is None


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (b"v2.tgz/G/v1.tgz/G", ExternalCompression("gzip", "gzip")),
        (b"v2.tar.xz/Y/v1.tar.xz/Y", ExternalCompression("xz", "xz")),
        (b"v2.tbz/B/v1.bin/", ExternalCompression(None, "bzip2")),
        (b"v2.bin//v1.bin/", None),
        (b"v2.Z/Z", ExternalCompression(None, "compress")),
        (b"odd/name/with/slashes/G", None),  # not xdelta3's layout: left alone
    ],
)
def test_header_layouts(tmp_path: Path, header: bytes, expected: ExternalCompression | None) -> None:
    delta = tmp_path / "d"
    delta.write_bytes(b"\xd6\xc3\xc4\x00\x04" + bytes([len(header)]) + header)
    assert external_compression.declared(delta) == expected
