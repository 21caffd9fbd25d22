"""run_grouped: one group's items in order, groups in parallel, results in item order, first failure raised."""

from __future__ import annotations

import threading
import time

import pytest
from deltaglider_core.support.parallel import run_grouped


def test_groups_run_in_parallel_and_items_of_a_group_in_order() -> None:
    log: list[tuple[str, int]] = []
    lock = threading.Lock()
    running: set[str] = set()
    overlap = threading.Event()

    def work(item: tuple[str, int]) -> int:
        group, n = item
        with lock:
            assert group not in running  # never two items of one group at once
            running.add(group)
            if len(running) > 1:
                overlap.set()
            log.append(item)
        time.sleep(0.02)
        with lock:
            running.discard(group)
        return n * 10

    items = [("a", 1), ("b", 1), ("a", 2), ("b", 2), ("c", 1), ("a", 3)]
    assert run_grouped(items, lambda item: item[0], work, 4) == [10, 10, 20, 20, 10, 30]
    assert [n for g, n in log if g == "a"] == [1, 2, 3] and overlap.is_set()


def test_first_failure_in_item_order_is_raised_and_its_group_stops() -> None:
    done: list[tuple[str, int]] = []

    def work(item: tuple[str, int]) -> int:
        if item in (("b", 2), ("a", 3)):
            raise ValueError(f"bad {item}")
        done.append(item)
        return 0

    items = [("a", 1), ("b", 1), ("b", 2), ("a", 3), ("b", 3)]
    with pytest.raises(ValueError, match=r"bad \('b', 2\)"):
        run_grouped(items, lambda item: item[0], work, 2)
    assert ("b", 3) not in done and ("a", 1) in done


def test_one_worker_runs_everything_in_order_on_the_caller_thread() -> None:
    seen: list[int] = []
    main = threading.get_ident()

    def work(n: int) -> int:
        assert threading.get_ident() == main
        seen.append(n)
        return n

    assert run_grouped([3, 1, 2], lambda n: n, work, 1) == [3, 1, 2] and seen == [3, 1, 2]
