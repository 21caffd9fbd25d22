"""Drive the DeltaGlider 6.2.0 peer, which lives in its own venv (``.venv-peer``).

DeltaGlider 6.2.0 pins ``cryptography<45`` and Airflow 3 needs newer, so the peer cannot share our
venv. This module is both the client (``Peer``, used by tests and benchmarks) and the script the
peer's Python runs (``python devtools/peer.py OP ...``, printing one JSON line per call). The
peer's ``xdelta3`` is ``tests/peer/bin/xdelta3``: stock xdelta3's CLI from the pyxdelta wheel.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PEER_PYTHON = ROOT / ".venv-peer" / "bin" / "python"
SHIM_DIR = ROOT / "tests" / "peer" / "bin"


class PeerMissing(RuntimeError):
    pass


class Peer:
    """Runs DeltaGlider 6.2.0 operations in the peer venv against one S3 endpoint."""

    def __init__(self, endpoint_url: str, access_key: str, secret_key: str, python: Path | None = None) -> None:
        self.python = Path(os.environ.get("DG_PEER_PYTHON", python or PEER_PYTHON))
        if not self.python.exists():
            raise PeerMissing(
                f"DeltaGlider 6.2.0 peer venv not found at {self.python}: run 'make venv' (it creates .venv-peer)."
            )
        self.env = {
            **os.environ,
            "AWS_ACCESS_KEY_ID": access_key,
            "AWS_SECRET_ACCESS_KEY": secret_key,
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_EC2_METADATA_DISABLED": "true",
            "DG_PEER_ENDPOINT": endpoint_url,
            "DG_TEST_PYTHON": sys.executable,
            "PATH": f"{SHIM_DIR}{os.pathsep}{os.environ.get('PATH', '')}",
        }

    def run(self, op: str, *args: str) -> dict[str, Any]:
        proc = subprocess.run(
            [str(self.python), str(Path(__file__).resolve()), op, *args],
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"peer {op} failed ({proc.returncode}): {proc.stderr[-2000:]}")
        return dict(json.loads(proc.stdout.strip().splitlines()[-1]))

    def upload(self, paths: list[Path], s3_url: str) -> dict[str, Any]:
        return self.run("upload", s3_url, *map(str, paths))

    def download(self, s3_url: str, dest: Path) -> dict[str, Any]:
        return self.run("download", s3_url, str(dest))


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
    else:
        raise SystemExit(f"unknown op {op}")
    out["seconds"] = time.perf_counter() - started
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
