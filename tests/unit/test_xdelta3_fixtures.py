"""Deltas written by stock xdelta3 3.0.11 (Debian) with every secondary compressor decode byte-identically.

The fixtures under tests/fixtures/xdelta3 were written by the real binary (``python -m devtools.fixtures``);
these tests need no binary, except where they say so.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from deltaglider_core.codec import CodecError, default_codec
from deltaglider_core.vcdiff import UnsupportedSecondary, secondary_compressor, strip_secondary

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "xdelta3"
MANIFEST = json.loads((FIXTURES / "manifest.json").read_text())
DELTAS = sorted(MANIFEST["deltas"])
EXPECTED = MANIFEST["target_sha256"]


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_fixtures_are_what_the_manifest_says() -> None:
    assert MANIFEST["xdelta3"].startswith("Xdelta version 3.0.11")
    assert _sha(FIXTURES / "target.bin") == EXPECTED
    assert {secondary_compressor(FIXTURES / name) for name in DELTAS} == {"lzma", "djw", "fgk", None}
    assert secondary_compressor(FIXTURES / "lzma.vcdiff") == "lzma"  # Debian's default (-S not given)


@pytest.mark.parametrize("name", [n for n in DELTAS if n.startswith(("lzma", "none"))])
def test_lzma_and_plain_deltas_decode_without_any_binary(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shutil, "which", lambda *_: None)  # the wheel alone, as on a pip-only worker
    out = tmp_path / "out"
    default_codec().decode(FIXTURES / "source.bin", FIXTURES / name, out)
    assert _sha(out) == EXPECTED
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


@pytest.mark.parametrize("name", [n for n in DELTAS if n.startswith(("djw", "fgk"))])
def test_huffman_deltas_need_a_stock_binary_and_say_so(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shutil, "which", lambda *_: None)
    delta = tmp_path / name
    shutil.copyfile(FIXTURES / name, delta)
    with pytest.raises(UnsupportedSecondary, match=r"'(djw|fgk)' secondary compressor.*apt-get install xdelta3"):
        default_codec().decode(FIXTURES / "source.bin", delta, tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # no output, no leftover rewrite


@pytest.mark.parametrize("name", [n for n in DELTAS if n.startswith(("djw", "fgk"))])
def test_huffman_deltas_decode_through_a_stock_binary(name: str, tmp_path: Path, stock_xdelta3: str) -> None:
    out = tmp_path / "out"
    default_codec().decode(FIXTURES / "source.bin", FIXTURES / name, out)
    assert _sha(out) == EXPECTED


@pytest.mark.parametrize("name", [n for n in DELTAS if n.startswith("lzma")])
def test_rewritten_delta_is_valid_for_stock_xdelta3_too(name: str, tmp_path: Path, stock_xdelta3: str) -> None:
    plain = tmp_path / "plain.vcdiff"
    assert strip_secondary(FIXTURES / name, plain) == "lzma"
    assert secondary_compressor(plain) is None and plain.stat().st_size > (FIXTURES / name).stat().st_size
    subprocess.run(
        [stock_xdelta3, "-d", "-f", "-s", str(FIXTURES / "source.bin"), str(plain), str(tmp_path / "out")], check=True
    )
    assert _sha(tmp_path / "out") == EXPECTED


def test_damaged_lzma_section_is_a_codec_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda *_: None)
    raw = bytearray((FIXTURES / "lzma.vcdiff").read_bytes())
    raw[len(raw) // 2] ^= 0x55
    delta = tmp_path / "bad.vcdiff"
    delta.write_bytes(bytes(raw))
    with pytest.raises(CodecError):
        default_codec().decode(FIXTURES / "source.bin", delta, tmp_path / "out")
    truncated = tmp_path / "short.vcdiff"
    truncated.write_bytes((FIXTURES / "lzma-windows.vcdiff").read_bytes()[:-40])
    with pytest.raises(CodecError, match="truncated VCDIFF|does not decode"):
        strip_secondary(truncated, tmp_path / "plain")


@pytest.mark.parametrize("secondary", ["lzma", "djw", "fgk", "none"])
def test_live_round_trips_with_stock_xdelta3(
    secondary: str, tmp_path: Path, stock_xdelta3: str, builds: object
) -> None:
    """Fresh archives: stock xdelta3 encodes with each -S and we decode; we encode and stock xdelta3 decodes."""
    a, b = builds(0), builds(1)  # type: ignore[operator]
    delta = tmp_path / f"{secondary}.vcdiff"
    subprocess.run([stock_xdelta3, "-e", "-f", "-S", secondary, "-s", str(a), str(b), str(delta)], check=True)
    default_codec().decode(a, delta, tmp_path / "ours")
    assert (tmp_path / "ours").read_bytes() == b.read_bytes()
    default_codec().encode(a, b, tmp_path / "ours.vcdiff")
    subprocess.run([stock_xdelta3, "-d", "-f", "-s", str(a), str(tmp_path / "ours.vcdiff"), str(tmp_path / "theirs")],
                   check=True)  # fmt: skip
    assert (tmp_path / "theirs").read_bytes() == b.read_bytes()
