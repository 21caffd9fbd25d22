"""Benchmark corpora: generated nightly series, a drifting large series, a migration source, a big bucket."""

from __future__ import annotations

import os
import random
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deltaglider_core.ops.releases import parse_version

from example_dags.fake_builds import make_series


@dataclass(frozen=True)
class Series:
    name: str
    files: list[Path]

    @property
    def total_bytes(self) -> int:
        return sum(f.stat().st_size for f in self.files)


def nightly(root: Path, count: int, size: int) -> Series:
    """(a) ``count`` nightly builds of a ``size``-byte zip, ~3% of its 60 members rebuilt per version."""
    return Series("nightly", make_series(root / "nightly", count, size=size, members=60, churn=0.03, name="app"))


def drifting(root: Path, count: int, size: int) -> Series:
    """(a') a short series of large archives whose deltas against the first grow from ~8% to ~45%."""
    files = make_series(root / "drift", count, size=size, members=200, churn=0.075, name="wheel", seed=11)
    return Series("drifting-large", files)


def directory(path: Path) -> Series:
    """(b) real versioned files from a directory, uploaded in version order."""
    files = sorted((p for p in path.iterdir() if p.is_file()), key=lambda p: (parse_version(p.name) is None,
                   parse_version(p.name) or 0, p.name))  # type: ignore[arg-type]  # fmt: skip
    return Series(f"dir:{path.name}", files)


def put_many(client: Any, bucket: str, items: list[tuple[str, bytes]], workers: int = 32) -> None:
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(lambda kv: client.put_object(Bucket=bucket, Key=kv[0], Body=kv[1]), items))


def spaces(root: Path, count: int, versions: int, size: int) -> list[list[Path]]:
    """(e) ``count`` independent products, ``versions`` builds each (``size``-byte zips): one deltaspace each."""
    return [
        make_series(
            root / "spaces" / f"s{k:02d}", versions, size=size, members=40, churn=0.05, name=f"svc{k:02d}", seed=100 + k
        )
        for k in range(count)
    ]


def spaces_source(client: Any, bucket: str, products: list[list[Path]]) -> int:
    """The products as a plain bucket to migrate from, each under ``src/<product>/``; returns the object count."""
    items = [(f"src/{files[0].parent.name}/{f.name}", f.read_bytes()) for files in products for f in files]
    put_many(client, bucket, items)
    return len(items)


def migration_source(client: Any, bucket: str, series: Series, logs: int) -> int:
    """(c) versioned archives plus ``logs`` small objects in a plain bucket; returns the object count."""
    rng = random.Random(5)
    items = [(f"src/builds/{f.name}", f.read_bytes()) for f in series.files]
    items += [(f"src/logs/{i:05d}.log", rng.randbytes(rng.randrange(1000, 4000))) for i in range(logs)]
    put_many(client, bucket, items)
    return len(items)


def big_bucket(client: Any, bucket: str, objects: int, releases: list[Path], store: Any) -> int:
    """(d) a DeltaGlider bucket: ``objects`` objects, 20% of them deltas (DeltaGlider 6 metadata, one reference
    per 100-file deltaspace) among plain objects, plus one flat prefix of ``objects`` more objects holding a
    few real releases stored through the engine (what the release sensor polls).

    The deltas are synthetic (small bodies, real metadata): stats and listings read only metadata.
    """
    items: list[tuple[str, bytes, dict[str, str]]] = []
    deltas = objects // 5
    for i in range(deltas):
        space = f"builds/p{i // 100:03d}"
        meta = {
            "dg-tool": "deltaglider/6.2.0",
            "dg-original-name": f"a-{i}.zip",
            "dg-file-size": str(100_000 + i),
            "dg-file-sha256": f"{i:064x}",
            "dg-ref-key": f"{space}/reference.bin",
            "dg-ref-sha256": "0" * 64,
            "dg-delta-size": "64",
            "dg-delta-cmd": "xdelta3 -e -9",
            "dg-created-at": "2026-01-01T00:00:00Z",
        }
        items.append((f"{space}/a-{i}.zip.delta", os.urandom(64), meta))
        if i % 100 == 0:
            items.append(
                (f"{space}/reference.bin", os.urandom(256), {"dg-file-sha256": "0" * 64, "dg-note": "reference"})
            )
    items += [(f"data/{i // 1000:03d}/obj-{i:06d}.bin", os.urandom(64), {}) for i in range(objects - deltas)]
    items += [(f"flat/noise-{i:06d}.txt", b"x", {}) for i in range(objects)]  # one flat prefix for the sensor
    with ThreadPoolExecutor(max_workers=32) as pool:
        list(pool.map(lambda kv: client.put_object(Bucket=bucket, Key=kv[0], Body=kv[1], Metadata=kv[2]), items))
    for path in releases:
        store.put(path, bucket, f"flat/{path.name}")
    return len(items) + len(releases)
