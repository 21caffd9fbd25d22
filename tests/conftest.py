"""Shared fixtures: loopback-only network guard, moto S3, the embedded SeaweedFS server, Airflow env."""

from __future__ import annotations

import ipaddress
import os
import socket
import sys
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent

_SAFE_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
    "DG_DISABLE_EC2_DETECTION": "1",
    "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    "AIRFLOW__CORE__UNIT_TEST_MODE": "True",
}


def pytest_configure(config: pytest.Config) -> None:
    for name, value in _SAFE_ENV.items():
        os.environ.setdefault(name, value)
    if "AIRFLOW_HOME" not in os.environ or not os.environ.get("DG_KEEP_AIRFLOW_HOME"):
        home = Path(tempfile.mkdtemp(prefix="airflow-home-"))
        os.environ["AIRFLOW_HOME"] = str(home)
        os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{home}/airflow.db"
    os.environ["DG_TEST_PYTHON"] = sys.executable
    _guard_network()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``DG_AIRFLOW_FACING_ONLY=1`` (tox's ``py-oldest``): only the test files that touch Airflow, i.e. that name
    it; the engine's own tests do not depend on the Airflow version and run once, on the newest."""
    if os.environ.get("DG_AIRFLOW_FACING_ONLY") != "1":
        return
    facing: dict[Path, bool] = {}
    keep, drop = [], []
    for item in items:
        path = Path(str(item.path))
        if path not in facing:
            facing[path] = "airflow" in path.read_text()
        (keep if facing[path] else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def _is_loopback(address: Any) -> bool:
    if isinstance(address, tuple) and address:
        host = address[0]
    else:
        return True  # AF_UNIX paths
    if host in ("localhost", "", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _guard_network() -> None:
    """Refuse any connection that is not to loopback: no test may reach another address."""
    original = socket.socket.connect
    original_ex = socket.socket.connect_ex

    def connect(self: socket.socket, address: Any) -> None:
        if not _is_loopback(address):
            raise ConnectionRefusedError(f"tests may only connect to loopback, not {address!r}")
        original(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        if not _is_loopback(address):
            raise ConnectionRefusedError(f"tests may only connect to loopback, not {address!r}")
        return original_ex(self, address)

    original_getaddrinfo = socket.getaddrinfo

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else host
        if name is not None and not _is_loopback((name,)):
            raise socket.gaierror(f"tests may only resolve loopback names, not {name!r}")
        return original_getaddrinfo(host, *args, **kwargs)

    socket.socket.connect = connect  # type: ignore[method-assign]
    socket.socket.connect_ex = connect_ex  # type: ignore[method-assign]
    socket.getaddrinfo = getaddrinfo


@pytest.fixture
def stock_xdelta3() -> str:
    """Path of a real, independently built xdelta3; the test is skipped (and says why) without one."""
    from devtools.peer import PeerMissing, stock_xdelta3

    try:
        return stock_xdelta3()
    except PeerMissing as exc:
        pytest.skip(f"needs a stock xdelta3 binary as the peer: {exc}")


@pytest.fixture
def peer(seaweed_s3: Any, stock_xdelta3: str) -> Any:
    """DeltaGlider 6.2.0 (its own venv) on a stock xdelta3, against the session's SeaweedFS."""
    from devtools.peer import Peer

    return Peer(seaweed_s3.endpoint_url, seaweed_s3.access_key, seaweed_s3.secret_key)


@dataclass
class S3Env:
    """What a test needs to talk to one S3 server: a client, a fresh bucket, and how to connect."""

    client: Any
    bucket: str
    endpoint_url: str | None
    access_key: str
    secret_key: str
    region: str = "us-east-1"

    @property
    def credentials(self) -> Any:
        """The client's credentials, as ``session.get_credentials()`` gives them (for the fast transport)."""
        from botocore.credentials import Credentials

        return Credentials(self.access_key, self.secret_key)

    def store(self, **options: Any) -> Any:
        """A DeltaStore on this server, with the fast transport where the server is real."""
        from deltaglider_core import DeltaStore, Endpoint, StoreConfig

        return DeltaStore(Endpoint(self.client, credentials=self.credentials), StoreConfig.from_env(**options))


def new_bucket_name() -> str:
    return f"t-{uuid.uuid4().hex[:20]}"


@pytest.fixture
def moto_s3() -> Iterator[S3Env]:
    """A moto-backed S3 (behaves like AWS: missing buckets fail) with one fresh bucket."""
    import boto3
    from moto import mock_aws

    with mock_aws(), pytest.MonkeyPatch.context() as patch:
        patch.setenv("DG_FAST_TRANSPORT", "0")  # moto answers boto3 calls only, not raw HTTP
        client = boto3.client("s3", region_name="us-east-1")
        bucket = new_bucket_name()
        client.create_bucket(Bucket=bucket)
        yield S3Env(client, bucket, None, "testing", "testing")


@pytest.fixture
def moto_conn(moto_s3: S3Env, monkeypatch: pytest.MonkeyPatch) -> str:
    """The id of an ``AIRFLOW_CONN_*`` connection (type deltaglider) to the test's moto S3, for DAG runs."""
    from tests.airflow_runs import conn_env

    name, value = conn_env("dg_moto", moto_s3)
    monkeypatch.setenv(name, value)
    return "dg_moto"


@pytest.fixture(scope="session")
def seaweed() -> Iterator[Any]:
    """One real SeaweedFS S3 server on loopback for the whole session."""
    from devtools.seaweed import SeaweedServer

    server = SeaweedServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def seaweed_s3(seaweed: Any) -> S3Env:
    """A fresh bucket on the session's SeaweedFS server."""
    client = seaweed.client()
    bucket = new_bucket_name()
    client.create_bucket(Bucket=bucket)
    return S3Env(client, bucket, seaweed.endpoint_url, seaweed.access_key, seaweed.secret_key)


@pytest.fixture
def builds(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A factory of deterministic fake nightly builds (small zips)."""
    from example_dags.fake_builds import make_build

    root = tmp_path_factory.mktemp("builds")

    def make(version: int, **kwargs: Any) -> Path:
        kwargs.setdefault("size", 200_000)
        kwargs.setdefault("members", 20)
        kwargs.setdefault("churn", 0.1)
        return make_build(root, version, **kwargs)

    return make
