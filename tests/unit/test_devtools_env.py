"""Tools that start third-party code keep it off the network: only loopback, no IMDS, no telemetry."""

from __future__ import annotations

import sys
from pathlib import Path

from devtools.peer import Peer


def test_peer_never_asks_the_instance_metadata_service(stock_xdelta3: str) -> None:
    peer = Peer("http://127.0.0.1:1", "ak", "sk", python=Path(sys.executable))
    assert peer.env["DG_DISABLE_EC2_DETECTION"] == "true"  # DeltaGlider's own IMDS probe (its CLI runs it)
    assert peer.env["AWS_EC2_METADATA_DISABLED"] == "true"  # botocore's
    assert peer.env["DG_PEER_ENDPOINT"] == "http://127.0.0.1:1"
