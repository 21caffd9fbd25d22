"""The embedded SeaweedFS used by tests, the demo and the benchmark stays on loopback and cleans up after itself."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from devtools.seaweed import HOST, SeaweedServer

pytestmark = pytest.mark.integration


def test_server_is_loopback_only_and_leaves_nothing_behind() -> None:
    server = SeaweedServer().start()
    try:
        assert server.process is not None
        pid, data_dir = server.process.pid, server.data_dir
        args = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
        assert "-master.telemetry=false" in args  # its default reports to telemetry.seaweedfs.com
        assert f"-ip.bind={HOST}" in args and HOST == "127.0.0.1"
        client = server.client()
        client.create_bucket(Bucket="probe")
        client.put_object(Bucket="probe", Key="k", Body=b"x")
        assert client.get_object(Bucket="probe", Key="k")["Body"].read() == b"x"
        ports = list(server.ports.values())
    finally:
        server.stop()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert data_dir is not None and not data_dir.exists()
    tmp = Path(tempfile.gettempdir())
    left = [p.name for port in ports for p in tmp.glob(f"seaweedfs-*{port}.sock")]
    left += [p.name for port in ports for p in tmp.glob(f"seaweedfs-*-grpc-{port + 10000}.sock")]
    assert left == []
