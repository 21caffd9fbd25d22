"""The memory budget: where its default comes from, the source window it allows, and that the store uses it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from deltaglider_core import DeltaStore, StoreConfig
from deltaglider_core.codec.budget import (
    DEFAULT_BUDGET,
    MIB,
    budget_from,
    budget_window,
    budgeted_window,
    cgroup_limit,
    default_budget,
)
from deltaglider_core.errors import DeltaGliderError


def _limit_file(tmp_path: Path, text: str) -> tuple[Path, ...]:
    path = tmp_path / "memory.max"
    path.write_text(text + "\n")
    return (path,)


def test_default_budget_is_half_the_cgroup_limit_else_one_gib(tmp_path: Path) -> None:
    assert default_budget(_limit_file(tmp_path, str(4 << 30))) == 2 << 30  # a 4 GiB pod: 2 GiB
    assert cgroup_limit(_limit_file(tmp_path, "max")) is None  # cgroup v2 without a limit
    assert default_budget(_limit_file(tmp_path, "max")) == DEFAULT_BUDGET == 1 << 30
    assert default_budget(_limit_file(tmp_path, str(1 << 62))) == DEFAULT_BUDGET  # cgroup v1 "unlimited"
    assert default_budget((tmp_path / "missing",)) == DEFAULT_BUDGET


def test_window_fits_the_budget_and_never_exceeds_the_reference() -> None:
    assert budget_window(256 * MIB) == 16 * MIB  # (256 - 128) / 5 = 25.6 MB: the power of two below
    assert budget_window(1024 * MIB) == 128 * MIB
    assert budget_window(4096 * MIB) == 512 * MIB
    assert budgeted_window(10 * MIB, 4096 * MIB) == 16 * MIB  # a small reference needs no more than itself
    assert budgeted_window(3 << 30, 1024 * MIB) == 128 * MIB


def test_budget_settings_are_checked_with_the_setting_named(monkeypatch: pytest.MonkeyPatch) -> None:
    assert budget_from("512") == 512 * MIB
    with pytest.raises(DeltaGliderError, match="memory_budget_mb='lots' is not a whole number"):
        budget_from("lots")
    with pytest.raises(DeltaGliderError, match="too small.*at least 64 MB"):
        budget_from(16)
    monkeypatch.setenv("DG_MEMORY_BUDGET_MB", "300")
    with DeltaStore(object()) as store:
        assert store.memory_budget == 300 * MIB and store.window == 32 * MIB
    with DeltaStore(object(), StoreConfig(memory_budget_mb=2048)) as store:  # the argument wins over the environment
        assert store.memory_budget == 2048 * MIB and store.window == 256 * MIB


def test_store_encodes_and_decodes_with_the_budget_window(moto_s3: Any, builds: Any, tmp_path: Path) -> None:
    """The codec gets the budget's window on writes and the same on reads; a first upload runs no encode."""
    calls: list[tuple[str, int | None]] = []
    store = DeltaStore(moto_s3.client, StoreConfig(memory_budget_mb=256))
    real = store.codec

    class Spy:
        name = real.name

        def encode(
            self, source: Path, target: Path, out: Path, window: int | None = None, *, quick: bool = False
        ) -> str:
            calls.append(("encode", window))
            return real.encode(source, target, out, window, quick=quick)

        def decode(
            self, source: Path, delta: Path, out: Path, window: int | None = None, *, limit: int | None = None
        ) -> None:
            calls.append(("decode", window))
            real.decode(source, delta, out, window, limit=limit)

    store.codec = Spy()
    store.put(builds(0), moto_s3.bucket, "rel/app-1.0.0.zip")
    assert calls == []  # the reference's own delta is written directly, not encoded
    store.put(builds(1), moto_s3.bucket, "rel/app-1.0.1.zip")
    got = store.get(moto_s3.bucket, "rel/app-1.0.1.zip", tmp_path / "v1.zip")
    assert got.sha256 and Path(got.path).read_bytes() == builds(1).read_bytes()
    # A byte-level encode (and, for a zip whose byte-level delta is not tiny, a content-level one), one decode:
    # every call with the budget's window.
    assert [k for k, _ in calls].count("decode") == 1 and calls[0] == ("encode", 16 * MIB)
    assert calls[-1] == ("decode", 16 * MIB) and all(w is not None and w <= 16 * MIB for _, w in calls)
    first = DeltaStore(moto_s3.client).get(moto_s3.bucket, "rel/app-1.0.0.zip", tmp_path / "v0.zip")
    assert Path(first.path).read_bytes() == builds(0).read_bytes()  # the identity delta reads back


def test_too_little_temp_space_is_refused_before_anything_is_written(
    moto_s3: Any, builds: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil
    from collections import namedtuple

    store = DeltaStore(moto_s3.client)
    store.put(builds(0), moto_s3.bucket, "rel/app-1.0.0.zip")
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda _: usage(1 << 30, (1 << 30) - (1 << 20), 1 << 20))
    with pytest.raises(DeltaGliderError) as err:
        store.put(builds(1), moto_s3.bucket, "rel/app-1.0.1.zip")
    message = str(err.value)
    assert message.startswith("Not enough temporary disk space for encoding s3://")
    assert "1 MB free" in message and "TMPDIR" in message and "Nothing was written" in message
    keys = sorted(o["Key"] for o in moto_s3.client.list_objects_v2(Bucket=moto_s3.bucket)["Contents"])
    assert keys == ["rel/app-1.0.0.zip.delta", "rel/reference.bin"]
