"""Compressed-archive corpora for `make bench`: a package released several times, as sdists, wheels and
``tar czf`` tarballs, generated locally from real content (no download).

The content is a share of the installed ``botocore`` package (Python sources and JSON service models, which
the installed package holds gzipped and are decompressed into the work tree, as botocore's source tree has
them). Each release edits it the way botocore's releases do: a few sources get a line, a few models change
a little. Each release is then packed three ways:

- ``sdists``: ``tarfile`` + Python's ``gzip`` (level 9), as setuptools writes sdists (plain JSON inside);
- ``wheels``: ``zipfile``, deflated (zlib's default level), as the ``wheel`` tool writes them, with every
  model gzipped at build time (Python's ``gzip``, level 6, the build time in its header), as botocore's
  wheels hold them, so every model's bytes change each release even where its JSON did not;
- ``tar czf``: GNU tar piping to GNU gzip (level 6), skipped when either program is missing.
"""

from __future__ import annotations

import gzip
import io
import os
import random
import shutil
import subprocess
import tarfile
import zipfile
from pathlib import Path

from benchmarks.corpora import Series

RELEASE_EPOCH = 1_760_000_000  # release v is at RELEASE_EPOCH + v days
DAY = 86_400


def package_tree(root: Path, share: int = 4) -> Path:
    """A copy of botocore's sources and every ``share``-th service's models under ``root/tree``."""
    import botocore

    source = Path(botocore.__file__).parent
    tree = root / "tree" / "pkg"
    shutil.rmtree(tree.parent, ignore_errors=True)
    tree.mkdir(parents=True)
    for path in sorted(source.glob("*.py")):
        shutil.copy2(path, tree / path.name)
    services = sorted(p for p in (source / "data").iterdir() if p.is_dir())
    for service in services[::share]:
        shutil.copytree(service, tree / "data" / service.name)
    for packed in tree.rglob("*.json.gz"):
        packed.with_suffix("").write_bytes(gzip.decompress(packed.read_bytes()))
        packed.unlink()
    return tree


def release(tree: Path, version: int) -> None:
    """Edit the tree as release ``version`` would (deterministic)."""
    rng = random.Random(version)
    mtime = RELEASE_EPOCH + version * DAY
    sources = sorted(tree.glob("*.py"))
    for path in rng.sample(sources, min(6, len(sources))):
        lines = path.read_text().splitlines(keepends=True)
        at = rng.randrange(len(lines) + 1)
        lines.insert(at, f"# release {version}: {rng.randbytes(8).hex()}\n")
        path.write_text("".join(lines))
    models = sorted(tree.glob("data/*/*/service-2.json"))
    for path in rng.sample(models, min(4, len(models))):
        text = path.read_bytes()
        at = text.find(b'"documentation":"')
        insert = f"Changed in release {version}. ".encode()
        path.write_bytes(text[: at + 17] + insert + text[at + 17 :] if at >= 0 else text + insert)
    for path in tree.rglob("*"):
        os.utime(path, (mtime, mtime))


def _files(tree: Path) -> list[Path]:
    return sorted(p for p in tree.rglob("*") if p.is_file())


def sdist(tree: Path, out: Path, version: int) -> Path:
    name = f"pkg-1.{version}"
    path = out / f"{name}.tar.gz"
    mtime = RELEASE_EPOCH + version * DAY
    with (
        open(path, "wb") as raw,
        gzip.GzipFile(f"{name}.tar", "wb", 9, raw, mtime=mtime) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for f in _files(tree):
            tar.add(f, arcname=f"{name}/{f.relative_to(tree)}", recursive=False)
    return path


def wheel(tree: Path, out: Path, version: int) -> Path:
    path = out / f"pkg-1.{version}-py3-none-any.whl"
    mtime = RELEASE_EPOCH + version * DAY
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in _files(tree):
            name = f"pkg/{f.relative_to(tree)}"
            if f.suffix == ".json" and f.parent.parent.parent.name == "data":  # a service model: gzipped
                packed = io.BytesIO()
                with gzip.GzipFile(f.name, "wb", 6, packed, mtime=mtime) as gz:
                    gz.write(f.read_bytes())
                zf.writestr(zipfile.ZipInfo.from_file(f, name + ".gz"), packed.getvalue(), zipfile.ZIP_DEFLATED)
            else:
                zf.write(f, name)
    return path


def tar_czf(tree: Path, out: Path, version: int) -> Path | None:
    if shutil.which("tar") is None or shutil.which("gzip") is None:
        return None
    path = out / f"pkg-1.{version}.tgz"
    subprocess.run(["tar", "czf", str(path), "--owner=0", "--group=0", "--numeric-owner", "-C", str(tree.parent),
                    tree.name], check=True, env={k: v for k, v in os.environ.items() if k != "GZIP"})  # fmt: skip
    return path


def series(root: Path, versions: int) -> list[Series]:
    """The three corpora over ``versions`` releases (``tar czf`` left out when GNU tar or gzip is missing)."""
    tree = package_tree(root)
    made: dict[str, list[Path]] = {"sdists (Python gzip)": [], "wheels (zip)": [], "tar czf (GNU gzip)": []}
    for kind in made:
        (root / kind.split()[0]).mkdir(parents=True, exist_ok=True)
    for version in range(versions):
        release(tree, version)
        made["sdists (Python gzip)"].append(sdist(tree, root / "sdists", version))
        made["wheels (zip)"].append(wheel(tree, root / "wheels", version))
        tarball = tar_czf(tree, root / "tar", version)
        if tarball is not None:
            made["tar czf (GNU gzip)"].append(tarball)
    return [Series(name, files) for name, files in made.items() if files]
