"""DeltaGliderReleaseSensor: wait until a new release lands in a deltaspace."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue
from deltaglider_core.ops import ReleaseQuery, find_releases, payload

from airflow_provider_deltaglider.compat import AirflowException, AirflowFailException, conf
from airflow_provider_deltaglider.hooks.deltaglider import DeltaGliderHook
from airflow_provider_deltaglider.operators.base import (
    DeltaGliderTaskMixin,
    connection_template_fields,
    fail_fast,
    split_url,
    task_entry,
)
from airflow_provider_deltaglider.triggers.release import DeltaGliderReleaseTrigger


class DeltaGliderReleaseSensor(DeltaGliderTaskMixin, BaseSensorOperator):
    """Fire when a new release (a logical object whose file name matches ``pattern``) exists.

    "New" means LastModified after ``newer_than`` and/or a version above ``after_version`` (parsed from the
    file name, compared as versions). With neither, any matching release fires.

    :param location: ``s3://bucket/prefix/`` (the deltaspace). Templated.
    :param pattern: glob on the file name (``[0-9]`` ranges work); ``*.zip`` never matches ``.delta`` or
        internal keys. Templated.
    :param regex: a regular expression on the file name instead of ``pattern``. Templated.
    :param newer_than: datetime or ISO string, e.g. ``"{{ data_interval_start }}"``. Templated.
    :param up_to: only releases that landed at or before this (e.g. ``"{{ data_interval_end }}"``): with
        ``newer_than`` each release falls in exactly one scheduled run's interval, so overlapping runs never
        fire on the same release. Templated.
    :param after_version: e.g. ``"1.9.2"``. Templated.
    :param deferrable: wait in the triggerer (default: ``[operators] default_deferrable``).

    XCom: ``{"newest": {key, name, version, size, last_modified, sha256}, "releases": [... by version],
    "count"}``. Also takes ``poke_interval``, ``timeout``, ``mode``, ``soft_fail``, ``exponential_backoff``.
    """

    template_fields: Sequence[str] = connection_template_fields(
        "location", "pattern", "regex", "newer_than", "after_version", "up_to"
    )
    ui_color = "#e8f4d9"

    def __init__(
        self,
        *,
        location: str,
        pattern: str = "*",
        regex: str | None = None,
        newer_than: _dt.datetime | str | None = None,
        after_version: str | None = None,
        up_to: _dt.datetime | str | None = None,
        deltaglider_conn_id: str = DeltaGliderHook.default_conn_name,
        region_name: str | None = None,
        endpoint_url: str | None = None,
        client_config: dict[str, Any] | None = None,
        ec2_region_check: str | None = None,
        verify: bool | str | None = None,
        botocore_config: dict[str, Any] | None = None,
        deferrable: bool | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._init_deltaglider(
            deltaglider_conn_id, region_name, endpoint_url, client_config, ec2_region_check, verify, botocore_config
        )
        self.location = location
        self.pattern = pattern
        self.regex = regex
        self.newer_than = newer_than
        self.after_version = after_version
        self.up_to = up_to
        if deferrable is None:
            deferrable = conf.getboolean("operators", "default_deferrable", fallback=False)
        self.deferrable = deferrable

    def preflight_bucket(self) -> str | None:
        return split_url(self.location)[0]

    @staticmethod
    def _text(value: _dt.datetime | str | None) -> str | None:
        if isinstance(value, _dt.datetime):
            return value.isoformat()
        return value or None

    def _query(self) -> ReleaseQuery:
        bucket, prefix = split_url(self.location)
        return ReleaseQuery(
            bucket, prefix, self.pattern, self.regex, self._text(self.newer_than), self.after_version,
            self._text(self.up_to),
        )  # fmt: skip

    @fail_fast
    def poke(self, context: Any) -> PokeReturnValue:
        releases = find_releases(self.hook.get_store(), self._query())
        if releases:
            self.log.info("found %d new release(s); newest %s", len(releases), releases[-1].key)
        else:
            self.log.info("no new release matching %r under %s yet", self.regex or self.pattern, self.location)
        return PokeReturnValue(bool(releases), payload(releases) if releases else None)

    @task_entry
    def execute(self, context: Any) -> Any:
        if not self.deferrable:
            return super().execute(context)
        first = self.poke(context)
        if first.is_done:
            return first.xcom_value
        trigger = DeltaGliderReleaseTrigger(
            location=self.location,
            pattern=self.pattern,
            regex=self.regex,
            newer_than=self._text(self.newer_than),
            after_version=self.after_version,
            up_to=self._text(self.up_to),
            poke_interval=self.poke_interval,
            **self.connection_kwargs(),
        )
        timeout = _dt.timedelta(seconds=self.timeout) if self.timeout else None
        self.defer(trigger=trigger, method_name="execute_complete", timeout=timeout)
        return None

    def execute_complete(self, context: Any, event: dict[str, Any] | None = None) -> Any:
        if not event or event.get("status") != "success":
            message = (event or {}).get("message", "no event")
            final = event is not None and event.get("retryable") is False  # e.g. a missing bucket
            error = AirflowFailException if final else AirflowException
            raise error(f"Waiting for a release in {self.location} failed: {message}")
        newest = event["payload"].get("newest") or {}
        self.log.info(
            "resumed: %d new release(s) in %s; newest %s (version %s, sha256 %s)",
            event["payload"].get("count", 0), self.location, newest.get("uri"), newest.get("version"),
            newest.get("sha256"),
        )  # fmt: skip
        return event["payload"]
