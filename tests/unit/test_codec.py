from __future__ import annotations

import os
import random
import subprocess
from pathlib import Path

import pytest
from deltaglider_core.codec.budget import full_window
from deltaglider_core.codec.xdelta3 import CliRunner, CodecError, XDelta3Codec, default_codec


def _pair(tmp_path: Path, size: int = 300_000) -> tuple[Path, Path]:
    rng = random.Random(1)
    base = rng.randbytes(size)
    target = bytearray(base)
    target[1000:1010] = b"CHANGED!!!"
    target += rng.randbytes(5000)
    a, b = tmp_path / "a.zip", tmp_path / "b.zip"
    a.write_bytes(base)
    b.write_bytes(bytes(target))
    return a, b


def test_roundtrip_is_byte_identical_and_small(tmp_path: Path) -> None:
    a, b = _pair(tmp_path)
    codec = default_codec()
    cmd = codec.encode(a, b, tmp_path / "d")
    assert cmd == "xdelta3 -e -9 -S none -B 1048576"
    assert (tmp_path / "d").stat().st_size < 6_000
    codec.decode(a, tmp_path / "d", tmp_path / "out")
    assert (tmp_path / "out").read_bytes() == b.read_bytes()


def test_output_is_vcdiff_that_stock_xdelta3_decodes(tmp_path: Path, stock_xdelta3: str) -> None:
    a, b = _pair(tmp_path)
    default_codec().encode(a, b, tmp_path / "d")
    assert (tmp_path / "d").read_bytes()[:3] == b"\xd6\xc3\xc4"  # VCDIFF magic
    subprocess.run(
        [stock_xdelta3, "-d", "-f", "-s", str(a), str(tmp_path / "d"), str(tmp_path / "cli-out")], check=True
    )
    assert (tmp_path / "cli-out").read_bytes() == b.read_bytes()


def test_system_binary_is_the_fallback_codec(
    tmp_path: Path, stock_xdelta3: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the pyxdelta wheel the store runs a system xdelta3; its deltas decode with the wheel and back."""
    import importlib.util
    import shutil

    a, b = _pair(tmp_path)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    monkeypatch.setattr(shutil, "which", lambda name: stock_xdelta3 if name == "xdelta3" else None)
    fallback = default_codec()
    assert fallback.name == "xdelta3/xdelta3-cli"
    monkeypatch.undo()
    cmd = fallback.encode(a, b, tmp_path / "d")
    assert cmd == "xdelta3 -e -9 -D -R -S none -B 1048576"
    default_codec().decode(a, tmp_path / "d", tmp_path / "out")  # the wheel reads the binary's delta
    assert (tmp_path / "out").read_bytes() == b.read_bytes()
    default_codec().encode(a, b, tmp_path / "d2")
    XDelta3Codec(CliRunner(stock_xdelta3)).decode(a, tmp_path / "d2", tmp_path / "out2")  # and the other way
    assert (tmp_path / "out2").read_bytes() == b.read_bytes()
    (tmp_path / "d2").write_bytes(b"not a delta")
    with pytest.raises(CodecError, match="xdelta3 decode of .* failed"):
        fallback.decode(a, tmp_path / "d2", tmp_path / "out3")


def test_source_window_covers_the_reference() -> None:
    assert full_window(10) == 1 << 20
    assert full_window((64 << 20) + 1) == 128 << 20
    assert full_window(10 << 30) == 1 << 31


def test_window_finds_matches_beyond_64_mib(tmp_path: Path) -> None:
    """A rotated 80 MiB file only delta-compresses if the window spans the whole reference."""
    size = 80 << 20
    a = tmp_path / "a.tar"
    a.write_bytes(os.urandom(size))
    b = tmp_path / "b.tar"
    data = a.read_bytes()
    b.write_bytes(data[size // 2 :] + data[: size // 2])
    del data
    codec = default_codec(level=1)
    codec.encode(a, b, tmp_path / "d")
    assert (tmp_path / "d").stat().st_size < size // 100
    codec.decode(a, tmp_path / "d", tmp_path / "out")
    assert (tmp_path / "out").stat().st_size == size
    assert (tmp_path / "out").read_bytes() == b.read_bytes()


def test_corrupt_delta_raises_codec_error(tmp_path: Path) -> None:
    a, b = _pair(tmp_path)
    codec = default_codec()
    codec.encode(a, b, tmp_path / "d")
    raw = bytearray((tmp_path / "d").read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    raw = raw[: len(raw) - 7]
    (tmp_path / "d").write_bytes(bytes(raw))
    with pytest.raises(CodecError, match="decode of .* failed"):
        codec.decode(a, tmp_path / "d", tmp_path / "out")
