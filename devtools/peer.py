"""Drive the DeltaGlider 6.2.0 peer, which lives in its own venv (``.venv-peer``).

DeltaGlider 6.2.0 pins ``cryptography<45`` and Airflow 3 needs newer, so the peer cannot share our
venv. This module is both the client (``Peer``, used by tests and benchmarks) and the script the
peer's Python runs (``python devtools/peer.py OP ...``, printing one JSON line per call). The
peer's ``xdelta3`` is a stock binary on PATH (Debian's package, as DeltaGlider's own image installs it),
never this project's codec: a peer built on our code could not show where we differ from it.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

try:
    from devtools.proc import run_measured
except ImportError:  # running as a script inside the peer venv
    run_measured = None  # type: ignore[assignment]

ROOT = Path(__file__).resolve().parent.parent
PEER_PYTHON = ROOT / ".venv-peer" / "bin" / "python"


class PeerMissing(RuntimeError):
    pass


def stock_xdelta3() -> str:
    """The stock ``xdelta3`` binary the peer runs; PeerMissing (naming the package) when there is none."""
    import shutil

    binary = shutil.which("xdelta3")
    if binary is None:
        raise PeerMissing(
            "no xdelta3 binary on PATH: the DeltaGlider 6.2.0 peer runs stock xdelta3 "
            "(Debian/Ubuntu: apt-get install xdelta3; .ci/run installs it)."
        )
    return binary


class Peer:
    """Runs DeltaGlider 6.2.0 operations in the peer venv against one S3 endpoint."""

    def __init__(self, endpoint_url: str, access_key: str, secret_key: str, python: Path | None = None) -> None:
        self.python = Path(os.environ.get("DG_PEER_PYTHON", python or PEER_PYTHON))
        if not self.python.exists():
            raise PeerMissing(
                f"DeltaGlider 6.2.0 peer venv not found at {self.python}: run 'make venv' (it creates .venv-peer)."
            )
        self.xdelta3 = stock_xdelta3()
        self.env = {
            **os.environ,
            "AWS_ACCESS_KEY_ID": access_key,
            "AWS_SECRET_ACCESS_KEY": secret_key,
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_EC2_METADATA_DISABLED": "true",
            "DG_DISABLE_EC2_DETECTION": "true",  # its CLI would otherwise ask 169.254.169.254 (IMDS)
            "DG_PEER_ENDPOINT": endpoint_url,
            "DG_TEST_PYTHON": sys.executable,
        }

    def run(self, op: str, *args: str) -> dict[str, Any]:
        """Run one operation in a fresh peer process; the result carries ``peak_rss_mb`` and ``wall_s``."""
        child = run_measured([str(self.python), str(Path(__file__).resolve()), op, *args], env=self.env)
        if child.returncode != 0:
            raise RuntimeError(f"peer {op} failed ({child.returncode}): {child.stderr[-2000:]}")
        return {**child.last_json(), "peak_rss_mb": child.peak_rss_mb, "wall_s": child.wall_s}

    def upload(self, paths: list[Path], s3_url: str) -> dict[str, Any]:
        return self.run("upload", s3_url, *map(str, paths))

    def download(self, s3_url: str, dest: Path) -> dict[str, Any]:
        return self.run("download", s3_url, str(dest))

    def download_many(self, urls: list[str], dest_dir: Path) -> dict[str, Any]:
        return self.run("download-many", str(dest_dir), *urls)

    def download_check(self, urls: list[str], dest_dir: Path) -> dict[str, Any]:
        """Download each URL on its own; ``files``: per URL its ``sha256`` or the peer's ``error``."""
        return self.run("download-check", str(dest_dir), *urls)

    def stats(self, bucket: str) -> dict[str, Any]:
        return self.run("stats", bucket)

    def poke(self, bucket: str, prefix: str, pattern: str) -> dict[str, Any]:
        """What a release check costs with the peer's API: list the prefix, pick the newest match, HEAD it."""
        return self.run("poke", bucket, prefix, pattern)

    def migrate(self, source: str, dest: str) -> dict[str, Any]:
        return self.run("migrate", source, dest)


def _main(argv: list[str]) -> int:  # runs inside the peer venv
    import logging

    import deltaglider  # type: ignore[import-not-found]

    logging.disable(logging.INFO)
    client = deltaglider.create_client(endpoint_url=os.environ["DG_PEER_ENDPOINT"], log_level="WARNING")
    op, rest = argv[0], argv[1:]
    started = time.perf_counter()
    out: dict[str, Any] = {"op": op}
    if op == "upload":
        url, files = rest[0], rest[1:]
        out["results"] = [str(client.upload(f, url)) for f in files]
        out["bytes"] = sum(os.path.getsize(f) for f in files)
    elif op == "download":
        client.download(rest[0], rest[1])
        out["bytes"] = os.path.getsize(rest[1])
    elif op == "download-many":
        total = 0
        for url in rest[1:]:
            target = os.path.join(rest[0], url.rpartition("/")[2])
            client.download(url, target)
            total += os.path.getsize(target)
        out["bytes"] = total
    elif op == "download-check":  # each file on its own: a failed read is recorded, not fatal
        import hashlib

        total, files = 0, []
        for url in rest[1:]:
            target = os.path.join(rest[0], url.rpartition("/")[2])
            try:
                client.download(url, target)
            except Exception as exc:  # noqa: BLE001 - the peer's own failure is the result
                files.append({"url": url, "error": str(exc)[:300]})
                if os.path.exists(target):
                    os.remove(target)
                continue
            with open(target, "rb") as f:
                files.append({"url": url, "sha256": hashlib.file_digest(f, "sha256").hexdigest()})
            total += os.path.getsize(target)
        out["bytes"], out["files"] = total, files
    elif op == "stats":
        stats = client.get_bucket_stats(rest[0], mode="detailed", use_cache=False)
        out["objects"] = stats.object_count
        out["original_bytes"] = stats.total_size
        out["stored_bytes"] = stats.compressed_size
    elif op == "poke":
        import fnmatch

        bucket, prefix, pattern = rest
        matches: list[dict[str, Any]] = []
        token = None
        while True:
            page = client.list_objects(Bucket=bucket, Prefix=prefix, Delimiter="/", ContinuationToken=token)
            names = ((o, o["Key"].rpartition("/")[2]) for o in page.get("Contents", []))
            matches += [o for o, name in names if fnmatch.fnmatchcase(name, pattern)]
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                break
        if matches:
            newest = max(matches, key=lambda o: (str(o["LastModified"]), o["Key"]))
            stored = newest["Key"] + (".delta" if newest["Metadata"].get("deltaglider-is-delta") == "true" else "")
            client.head_object(Bucket=bucket, Key=stored)  # its head_object does not map to ".delta" itself
        out["releases"] = len(matches)
    elif op == "migrate":
        from click.testing import CliRunner
        from deltaglider.app.cli.main import cli

        endpoint = os.environ["DG_PEER_ENDPOINT"]
        result = CliRunner().invoke(cli, ["migrate", rest[0], rest[1], "--yes", "--quiet", "--endpoint-url", endpoint])
        if result.exit_code != 0:
            raise SystemExit(f"deltaglider migrate failed: {result.output} {result.exception}")
    else:
        raise SystemExit(f"unknown op {op}")
    out["seconds"] = time.perf_counter() - started
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
