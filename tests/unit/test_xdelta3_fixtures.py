"""Deltas written by stock xdelta3 3.0.11 (Debian) with every secondary compressor decode byte-identically.

The fixtures under tests/fixtures/xdelta3 were written by the real binary (``python -m devtools.fixtures``);
these tests need no binary, except where they say so.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from deltaglider_core.codec.vcdiff import UnsupportedSecondary, secondary_compressor, strip_secondary
from deltaglider_core.codec.xdelta3 import CodecError, default_codec

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "xdelta3"
MANIFEST = json.loads((FIXTURES / "manifest.json").read_text())
DELTAS = sorted(MANIFEST["deltas"])
EXPECTED = MANIFEST["target_sha256"]


def _expected(name: str) -> str:
    """The SHA-256 of the target that delta ``name`` was written for."""
    target = MANIFEST["deltas"][name].get("target", "target.bin")
    return EXPECTED if target == "target.bin" else str(MANIFEST["fresh_target_sha256"])


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_fixtures_are_what_the_manifest_says() -> None:
    assert MANIFEST["xdelta3"].startswith("Xdelta version 3.0.11")
    assert _sha(FIXTURES / "target.bin") == EXPECTED
    assert _sha(FIXTURES / "target-fresh.bin") == MANIFEST["fresh_target_sha256"]
    assert {secondary_compressor(FIXTURES / name) for name in DELTAS} == {"lzma", "djw", "fgk", None}
    assert secondary_compressor(FIXTURES / "lzma.vcdiff") == "lzma"  # Debian's default (-S not given)


@pytest.mark.parametrize("name", DELTAS)
def test_every_delta_decodes_without_any_binary(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """LZMA, DJW (one table and several), FGK (one window and several) and plain: the wheel alone, as on a
    pip-only worker."""
    monkeypatch.setattr(shutil, "which", lambda *_: None)
    out = tmp_path / "out"
    default_codec().decode(FIXTURES / "source.bin", FIXTURES / name, out)
    assert _sha(out) == _expected(name)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_djw9_fixture_uses_several_tables() -> None:
    """The level-9 DJW fixture really exercises multi-table coding (3 bits of table count - 1 first)."""
    from deltaglider_core.codec import djw

    counts = []
    real = djw.decode

    def spy(payload: bytes, size: int, name: str) -> bytes:
        counts.append((payload[0] & 1) << 2 | (payload[0] >> 1 & 1) << 1 | (payload[0] >> 2 & 1))
        return real(payload, size, name)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(djw, "decode", spy)
        strip_secondary(FIXTURES / "djw9.vcdiff", Path(os.devnull))
    assert max(counts) >= 1  # at least one section coded with two or more tables


@pytest.mark.parametrize("name", ["fgk-windows.vcdiff"])
def test_multi_window_fgk_that_stock_xdelta3_rejects_is_read(name: str, tmp_path: Path, stock_xdelta3: str) -> None:
    """Stock xdelta3 cannot decode its own multi-window FGK delta (its encoder fed sections it then stored
    plain to its adaptive tree); we can, and the result is the exact target."""
    failed = subprocess.run(
        [stock_xdelta3, "-d", "-f", "-s", str(FIXTURES / "source.bin"), str(FIXTURES / name), str(tmp_path / "t")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert failed.returncode != 0 and "secondary decoder" in failed.stderr
    default_codec().decode(FIXTURES / "source.bin", FIXTURES / name, tmp_path / "ours")
    assert _sha(tmp_path / "ours") == EXPECTED


def test_unknown_secondary_compressor_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda *_: None)
    raw = bytearray((FIXTURES / "djw.vcdiff").read_bytes())
    assert raw[5] == 1  # the compressor id byte after the header indicator
    raw[5] = 99
    delta = tmp_path / "odd.vcdiff"
    delta.write_bytes(bytes(raw))
    with pytest.raises(UnsupportedSecondary, match=r"unknown secondary compressor \(id 99\).*apt-get install xdelta3"):
        default_codec().decode(FIXTURES / "source.bin", delta, tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["odd.vcdiff"]  # no output, no leftover rewrite


@pytest.mark.parametrize("name", [n for n in DELTAS if n.startswith(("djw", "fgk"))])
def test_damaged_huffman_section_is_a_codec_error_never_wrong_bytes(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A flipped byte in a DJW/FGK section fails the decode (or the window checksum), never returns wrong bytes
    silently: the store's SHA-256 check is the last line, this is the first."""
    monkeypatch.setattr(shutil, "which", lambda *_: None)
    raw = bytearray((FIXTURES / name).read_bytes())
    raw[-(len(raw) // 3)] ^= 0x5A
    delta = tmp_path / "bad.vcdiff"
    delta.write_bytes(bytes(raw))
    with pytest.raises(CodecError):
        default_codec().decode(FIXTURES / "source.bin", delta, tmp_path / "out")


@pytest.mark.parametrize("name", [n for n in DELTAS if not n.startswith("none")])
def test_rewritten_delta_is_valid_for_stock_xdelta3_too(name: str, tmp_path: Path, stock_xdelta3: str) -> None:
    plain = tmp_path / "plain.vcdiff"
    assert strip_secondary(FIXTURES / name, plain) == name.split("-")[0].split(".")[0].rstrip("9")
    assert secondary_compressor(plain) is None and plain.stat().st_size > (FIXTURES / name).stat().st_size
    subprocess.run(
        [stock_xdelta3, "-d", "-f", "-s", str(FIXTURES / "source.bin"), str(plain), str(tmp_path / "out")], check=True
    )
    assert _sha(tmp_path / "out") == _expected(name)


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


@pytest.mark.parametrize("secondary", ["lzma", "djw", "djw9", "fgk", "none"])
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
