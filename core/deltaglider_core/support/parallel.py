"""Run per-file work on threads, one group at a time per group: files of one deltaspace stay in order (the
first creates the reference, later ones encode against it and re-base in version order) while different
deltaspaces, and files stored whole, proceed in parallel. Encodes and decodes then use every core through
the store's codec processes (:mod:`.codec_pool`)."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar, cast

T = TypeVar("T")
R = TypeVar("R")


def run_grouped(
    items: Sequence[T],
    group: Callable[[T], Hashable],
    work: Callable[[T], R],
    workers: int,
    warm_up: Callable[[], None] | None = None,
) -> list[R]:
    """``work(item)`` for every item, results in the items' order. Items of one group run one after another in
    their order; groups run on up to ``workers`` threads. The first failure (in item order) is raised once
    every started group has stopped; a group stops at its first failure. ``warm_up`` (e.g. the store's) is
    called first when the work will run in parallel."""
    groups: dict[Hashable, list[int]] = {}
    for index, item in enumerate(items):
        groups.setdefault(group(item), []).append(index)
    results: list[R | None] = [None] * len(items)
    errors: dict[int, BaseException] = {}

    def run(indexes: list[int]) -> None:
        for index in indexes:
            try:
                results[index] = work(items[index])
            except BaseException as exc:  # noqa: BLE001 - re-raised below, in item order
                errors[index] = exc
                return

    if workers <= 1 or len(groups) <= 1:
        for indexes in groups.values():
            run(indexes)
    else:
        if warm_up is not None:
            warm_up()
        with ThreadPoolExecutor(max_workers=min(workers, len(groups)), thread_name_prefix="deltaglider-files") as pool:
            list(pool.map(run, groups.values()))
    if errors:
        raise errors[min(errors)]
    return [cast(R, r) for r in results]
