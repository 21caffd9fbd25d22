"""The event trigger's announced-release state stays under Airflow's 64 KB state-value policy and loses nothing."""

from __future__ import annotations

import datetime as dt
import json

from deltaglider_core.ops.releases import Release

from airflow_provider_deltaglider.triggers.announced import BUDGET_BYTES, Announced, pack, unpack

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)


def release(i: int, seconds: int | None = None) -> Release:
    stamp = (T0 + dt.timedelta(seconds=i if seconds is None else seconds)).isoformat()
    return Release(f"builds/nightly/app-2026.1.{i:05d}-linux-x86_64.zip", "app", f"2026.1.{i}", 1, stamp)


def test_thousands_of_releases_fit_and_all_stay_announced() -> None:
    present = [release(i) for i in range(5000)]
    value = pack(present, Announced({r.key for r in present}))
    assert len(json.dumps(value)) <= BUDGET_BYTES < 64 * 1024
    assert 0 < len(value["keys"]) < 5000 and value["floor"] is not None
    back = unpack(json.loads(json.dumps(value)))
    assert back is not None
    assert [r.key for r in present if not back.covers(r)] == []  # a restart repeats none of them
    assert not back.covers(release(5000))  # a release that lands later is new
    kept_oldest = min(value["keys"])
    assert kept_oldest > max(r.key for r in present if r.last_modified <= value["floor"])  # newest are the ones kept


def test_releases_sharing_a_timestamp_across_the_cut_stay_announced() -> None:
    present = [release(i, seconds=7) for i in range(3000)]  # all in one second
    value = pack(present, Announced({r.key for r in present}), budget=10_000)
    back = unpack(value)
    assert back is not None and all(back.covers(r) for r in present)
    assert not back.covers(release(1, seconds=8))


def test_small_state_keeps_every_key_and_no_floor() -> None:
    present = [release(i) for i in range(3)]
    announced = Announced({present[0].key, present[1].key})
    value = pack(present, announced)
    assert value == {"keys": [present[1].key, present[0].key], "floor": None}  # only announced ones, newest first


def test_old_and_foreign_forms() -> None:
    old = unpack(["a.zip", "b.zip"])
    assert old is not None and old.keys == {"a.zip", "b.zip"} and old.floor is None
    assert unpack(None) is None and unpack({"something": "else"}) is None and unpack("text") is None
