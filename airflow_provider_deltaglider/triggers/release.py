"""Triggers that wait for a new release without holding a worker slot.

``DeltaGliderReleaseTrigger`` resumes a deferred sensor; ``DeltaGliderReleaseEventTrigger`` feeds an
``AssetWatcher`` so a DAG is scheduled on each new release. Blocking calls (the connection lookup, boto3)
run in a thread, so a trigger never stalls the triggerer's event loop.

The thread comes from asgiref's ``sync_to_async``, as Airflow asks of triggers, not ``asyncio.to_thread``:
the connection lookup inside it talks to the triggerer's supervisor through ``async_to_sync``, which from an
asgiref thread runs on the triggerer's own loop (and its lock). From a plain thread it ran on a loop of its
own, and Airflow 3.0's triggerer, which does not bridge such loops, died with "Response read out of order"
as soon as that request crossed one of its own (found by the deployment suite on Airflow 3.0.6).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

from airflow.triggers.base import BaseEventTrigger, BaseTrigger, TriggerEvent
from deltaglider_core import DeltaGliderError, parse_s3_url
from deltaglider_core.ops import Release, ReleaseQuery, find_releases, payload

from airflow_provider_deltaglider.operators.base import FINAL_ERRORS

from .announced import Announced, pack, unpack


async def _off_loop(check: Callable[[], list[Release]]) -> list[Release]:
    """Run a blocking check in a worker thread of asgiref's (see the module docstring)."""
    from asgiref.sync import sync_to_async

    return await sync_to_async(check, thread_sensitive=False)()


def _fields(trigger: Any) -> dict[str, Any]:
    return {
        "location": trigger.location,
        "pattern": trigger.pattern,
        "regex": trigger.regex,
        "newer_than": trigger.newer_than,
        "after_version": trigger.after_version,
        "up_to": trigger.up_to,
        "deltaglider_conn_id": trigger.deltaglider_conn_id,
        "region_name": trigger.region_name,
        "endpoint_url": trigger.endpoint_url,
        "client_config": trigger.client_config,
        "verify": trigger.verify,
        "poke_interval": trigger.poke_interval,
    }


class _ReleasePolling:
    """Constructor, serialized fields and the blocking check (run off the event loop) of both triggers."""

    log: Any

    def __init__(
        self,
        *,
        location: str,
        pattern: str = "*",
        regex: str | None = None,
        newer_than: str | None = None,
        after_version: str | None = None,
        up_to: str | None = None,
        deltaglider_conn_id: str = "deltaglider_default",
        region_name: str | None = None,
        endpoint_url: str | None = None,
        client_config: dict[str, Any] | None = None,
        verify: bool | str | None = None,
        poke_interval: float = 60.0,
    ) -> None:
        super().__init__()
        self.location = location
        self.pattern = pattern
        self.regex = regex
        self.newer_than = newer_than
        self.after_version = after_version
        self.up_to = up_to
        self.deltaglider_conn_id = deltaglider_conn_id
        self.region_name = region_name
        self.endpoint_url = endpoint_url
        self.client_config = dict(client_config or {})
        self.verify = verify
        self.poke_interval = poke_interval
        self._store: Any = None
        self._store_lock = threading.Lock()
        self._closed = False

    def _check(self) -> list[Release]:
        """One listing (runs in a worker thread). The store is made on first use and kept for the next polls."""
        from airflow_provider_deltaglider.hooks.deltaglider import DeltaGliderHook

        with self._store_lock:
            if self._closed:  # the trigger ended while this check waited for a thread: open nothing
                return []
            if self._store is None:
                hook = DeltaGliderHook(
                    self.deltaglider_conn_id,
                    region_name=self.region_name,
                    endpoint_url=self.endpoint_url,
                    client_config=self.client_config,
                    verify=self.verify,
                )
                self._store = hook.get_store()
            store = self._store
        bucket, prefix = parse_s3_url(self.location)
        query = ReleaseQuery(bucket, prefix, self.pattern, self.regex, self.newer_than, self.after_version, self.up_to)
        return find_releases(store, query)

    def _close(self) -> None:
        """Close the store this trigger opened: a triggerer runs for weeks and must not accumulate them. A check
        still running in its thread (the trigger was cancelled under it) may see its listing fail; nobody
        waits for that result any more."""
        with self._store_lock:
            self._closed = True
            store, self._store = self._store, None
        if store is not None:
            store.close()


class DeltaGliderReleaseTrigger(_ReleasePolling, BaseTrigger):
    """Poll until a new release exists; yield ``{"status": "success", "payload": ...}`` or an error event."""

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return ("airflow_provider_deltaglider.triggers.release.DeltaGliderReleaseTrigger", _fields(self))

    async def run(self) -> AsyncIterator[TriggerEvent]:
        try:
            while True:
                try:
                    releases = await _off_loop(self._check)
                except (DeltaGliderError, ValueError) as exc:  # ValueError: a connection setting (SettingsError)
                    final = isinstance(exc, FINAL_ERRORS)
                    yield TriggerEvent({"status": "error", "message": str(exc), "retryable": not final})
                    return
                if releases:
                    yield TriggerEvent({"status": "success", "payload": payload(releases)})
                    return
                await asyncio.sleep(self.poke_interval)
        finally:
            self._close()


class DeltaGliderReleaseEventTrigger(_ReleasePolling, BaseEventTrigger):
    """For ``Asset(..., watchers=[AssetWatcher(name, trigger)])``: one event per new release.

    What was announced is kept in the watched asset's state store (``asset_state_store``, which the
    triggerer injects; see ``announced.py`` for the compact form), so a triggerer restart neither repeats
    releases nor misses those that landed while it was down. Without a state store (or on its first run)
    the releases present at start are the baseline, unless ``newer_than``/``after_version`` define newness,
    in which case every qualifying release is announced once.
    """

    STATE_KEY = "deltaglider_announced_releases"

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return ("airflow_provider_deltaglider.triggers.release.DeltaGliderReleaseEventTrigger", _fields(self))

    def _state(self) -> Any:
        return getattr(self, "asset_state_store", None)

    async def _load(self) -> Announced | None:
        state = self._state()
        if state is None:
            return None
        try:
            value = await state.aget(self.STATE_KEY, None)
        except Exception as exc:  # noqa: BLE001 - the watch goes on without persisted state
            self.log.warning("could not read announced releases from the asset state store: %s", exc)
            return None
        return unpack(value)

    async def _save(self, present: list[Release], announced: Announced) -> Announced:
        """Store what was announced; returns the same, as small as what was stored (memory stays bounded)."""
        value = pack(present, announced)
        state = self._state()
        if state is not None:
            try:
                await state.aset(self.STATE_KEY, value)
            except Exception as exc:  # noqa: BLE001 - worst case a restart re-baselines
                self.log.warning("could not store announced releases in the asset state store: %s", exc)
        return unpack(value) or announced

    async def run(self) -> AsyncIterator[TriggerEvent]:
        try:
            async for event in self._watch():
                yield event
        finally:
            self._close()

    async def _watch(self) -> AsyncIterator[TriggerEvent]:
        announced = await self._load()
        if announced is None:
            announced = Announced()
            if not (self.newer_than or self.after_version):
                baseline = await _off_loop(self._check)
                announced.add(baseline)
                announced = await self._save(baseline, announced)
        while True:
            try:
                releases = await _off_loop(self._check)
            except DeltaGliderError as exc:
                self.log.error("release watch on %s failed: %s", self.location, exc)
                await asyncio.sleep(self.poke_interval)
                continue
            fresh = [r for r in releases if not announced.covers(r)]
            if fresh:
                announced.add(fresh)
                announced = await self._save(releases, announced)
            for release in fresh:
                yield TriggerEvent({"status": "success", "release": release.to_dict()})
            await asyncio.sleep(self.poke_interval)
