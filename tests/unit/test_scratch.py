"""Work and cache dirs of a killed process (OOM killer, SIGKILL) are swept by the next process; a live
process's dirs, another user's, and dirs whose owner cannot be known are never touched."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from deltaglider_core.support import scratch

CHILD = """
import os, signal, sys, time
import boto3
from deltaglider_core import DeltaStore
store = DeltaStore(boto3.client("s3", region_name="us-east-1"))
print(os.getpid(), flush=True)
if sys.argv[1] == "die":
    os.kill(os.getpid(), signal.SIGKILL)
sys.stdin.read()  # stay alive until the test closes our stdin
"""


def _child(root: Path, mode: str) -> subprocess.Popen[str]:
    env = {**os.environ, "TMPDIR": str(root)}
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, mode], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )


def _dirs(root: Path) -> set[str]:
    return {p.name for p in root.iterdir() if p.name.startswith("deltaglider-")}


def test_dirs_of_dead_processes_are_swept_and_no_others(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "tmp"
    root.mkdir()
    alive = _child(root, "live")  # first: its own first store would sweep the dead child's dirs
    assert alive.stdout is not None
    alive_pid = int(alive.stdout.readline())
    killed = _child(root, "die")
    killed.communicate(timeout=60)
    assert killed.returncode == -signal.SIGKILL
    legacy = root / "deltaglider-work-abc123"  # an older version's name: owner unknown
    legacy.mkdir()
    try:
        left = _dirs(root)
        assert sum(f"-{killed.pid}-" in name for name in left) == 2  # its work dir and its cache dir
        monkeypatch.setattr(tempfile, "tempdir", str(root))
        monkeypatch.setattr(scratch, "_SWEPT", set())
        mine = scratch.private_dir("work")  # the first store of this process sweeps
        after = _dirs(root)
        assert not any(f"-{killed.pid}-" in name for name in after)
        assert sum(f"-{alive_pid}-" in name for name in after) == 2  # a live owner's dirs stay
        assert legacy.name in after and mine.name in after
        assert os.stat(mine).st_mode & 0o777 == 0o700
    finally:
        alive.communicate(timeout=60)


def test_a_reused_pid_does_not_protect_a_dead_owners_dir(tmp_path: Path) -> None:
    """The PID is alive, but its process started after the directory was made: the owner is gone."""
    stale = tmp_path / f"deltaglider-work-{os.getppid()}-x"
    stale.mkdir()
    os.utime(stale, (1_000_000_000, 1_000_000_000))  # made in 2001, long before our parent started
    assert scratch.sweep(tmp_path) == [stale]
    assert not stale.exists()
