"""Deterministic fake nightly builds: zip archives whose members change a little every version.

Used by the example DAGs (so the demo needs no network), the tests and the benchmarks.
Member ``i`` of version ``v`` is rebuilt when a seeded coin (probability ``churn``) says so; otherwise it
keeps the bytes it had in the previous version, like a real project's nightly output.
"""

from __future__ import annotations

import hashlib
import random
import zipfile
from pathlib import Path

_ALPHABET = bytes(range(ord("a"), ord("a") + 20)) + b" \n{}()=;:.,_0123456789"
_TABLE = bytes(_ALPHABET[i % len(_ALPHABET)] for i in range(256))


def _coin(seed: int, member: int, version: int) -> float:
    digest = hashlib.blake2b(f"{seed}:{member}:{version}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def _last_change(seed: int, member: int, version: int, churn: float) -> int:
    for v in range(version, 0, -1):
        if _coin(seed, member, v) < churn:
            return v
    return 0


def _member_bytes(seed: int, member: int, generation: int, size: int) -> bytes:
    raw = random.Random(f"{seed}/{member}/{generation}").randbytes(size)
    return raw.translate(_TABLE)


def make_build(
    out_dir: str | Path,
    version: int,
    *,
    name: str = "app",
    size: int = 1_700_000,
    members: int = 60,
    churn: float = 0.03,
    seed: int = 7,
) -> Path:
    """Write ``<name>-1.0.<version>.zip`` (about ``size`` bytes compressed) and return its path."""
    out = Path(out_dir) / f"{name}-1.0.{version}.zip"
    out.parent.mkdir(parents=True, exist_ok=True)
    # The alphabet deflates to roughly 0.7 of its size; aim for ``size`` bytes in the archive.
    member_size = max(1, int(size / 0.7) // members)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
        for member in range(members):
            generation = _last_change(seed, member, version, churn)
            info = zipfile.ZipInfo(f"{name}/module_{member:04d}.py", date_time=(2024, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, _member_bytes(seed, member, generation, member_size))
        manifest = zipfile.ZipInfo(f"{name}/VERSION", date_time=(2024, 1, 1, 0, 0, 0))
        archive.writestr(manifest, f"1.0.{version}\n")
    return out


def make_series(out_dir: str | Path, count: int, **kwargs: object) -> list[Path]:
    """``count`` consecutive versions (0 .. count-1)."""
    return [make_build(out_dir, v, **kwargs) for v in range(count)]  # type: ignore[arg-type]
