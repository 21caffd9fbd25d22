"""What the codec-pool tests share: the pyxdelta library they start workers with, and whether a pid lives."""

from __future__ import annotations

import importlib.util
import os


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def pyxdelta_library() -> str:
    spec = importlib.util.find_spec("pyxdelta")
    assert spec is not None and spec.origin
    return spec.origin
