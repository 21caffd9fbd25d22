"""What every DeltaGlider task shares: the connection parameters (declared once), the hook, the EC2 preflight
in ``pre_execute``, and failing without retries where a retry cannot succeed.

The pattern is the Amazon provider's ``AwsBaseHookMixin`` / ``aws_template_fields()``: operators, the
sensor and the trigger take the same connection parameters, and ``template_fields`` include them through
:func:`connection_template_fields`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from functools import cached_property
from typing import Any, TypeVar

from airflow.sdk import BaseOperator
from deltaglider_core import AccessDenied, IntegrityError, InvalidLocation, NotFound, parse_s3_url
from deltaglider_core.ops import PreflightResult, RegionMismatch

from airflow_provider_deltaglider.compat import AirflowFailException
from airflow_provider_deltaglider.hooks.deltaglider import DeltaGliderHook
from airflow_provider_deltaglider.hooks.settings import SettingsError

CONNECTION_TEMPLATE_FIELDS = ("deltaglider_conn_id", "region_name", "endpoint_url")

# Errors a retry cannot fix: a bad location or setting, a missing bucket or key, refused credentials, bytes
# that fail verification, a region mismatch in ``fail`` mode. The task fails at once instead of using its
# retries; everything else (throttling, network, per-object migration failures) is left to them.
FINAL_ERRORS: tuple[type[BaseException], ...] = (
    InvalidLocation,
    NotFound,
    AccessDenied,
    IntegrityError,
    RegionMismatch,
    SettingsError,
)

F = TypeVar("F", bound=Callable[..., Any])


def connection_template_fields(*fields: str) -> tuple[str, ...]:
    """``fields`` plus the templated connection parameters every DeltaGlider task has."""
    return (*fields, *CONNECTION_TEMPLATE_FIELDS)


def fail_fast(method: F) -> F:
    """Re-raise :data:`FINAL_ERRORS` as ``AirflowFailException`` (same message): no retries are spent."""

    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except FINAL_ERRORS as exc:
            raise AirflowFailException(str(exc)) from exc

    return wrapper  # type: ignore[return-value]


def task_entry(method: F) -> F:
    """For ``execute`` (and ``execute_complete``): :func:`fail_fast`, and the hook's store is closed when the
    method ends, however it ends (its thread pool, connections and private work directory)."""
    failing_fast = fail_fast(method)

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return failing_fast(self, *args, **kwargs)
        finally:
            self.close_hook()

    return wrapper  # type: ignore[return-value]


def split_url(url: str) -> tuple[str, str]:
    """``s3://bucket/prefix`` -> (bucket, prefix); a clear error for anything else."""
    return parse_s3_url(url)


def split_location(location: str) -> tuple[str, str]:
    """A bucket-wide location: ``bucket`` or ``s3://bucket/prefix/`` -> (bucket, prefix)."""
    return split_url(location if location.startswith("s3://") else f"s3://{location}")


def ratio(value: float | str | None) -> float | None:
    """A ``max_ratio`` argument, which may arrive as a rendered template string."""
    if value is None or value == "":
        return None
    try:
        return float(value)
    except (TypeError, ValueError) as exc:
        raise InvalidLocation(f"max_ratio={value!r} is not a number: use a value in (0, 1], e.g. 0.5.") from exc


class DeltaGliderTaskMixin:
    """Connection settings, hook and preflight, for operators and sensors alike.

    :param deltaglider_conn_id: Airflow connection (type ``deltaglider`` or ``aws``). Templated.
    :param region_name: overrides the connection's region. Templated.
    :param endpoint_url: overrides the connection's endpoint URL. Templated.
    :param verify: TLS verification, a bool or a CA bundle path (default: the connection's).
    :param botocore_config: botocore ``Config`` keyword arguments merged over the connection's (the Amazon
        provider's name); ``client_config`` is the same and wins where both set a key.
    :param ec2_region_check: ``warn`` | ``fail`` | ``off``; default from the connection (``warn``).
    """

    log: Any

    def _init_deltaglider(
        self,
        deltaglider_conn_id: str,
        region_name: str | None,
        endpoint_url: str | None,
        client_config: dict[str, Any] | None,
        ec2_region_check: str | None,
        verify: bool | str | None = None,
        botocore_config: dict[str, Any] | None = None,
    ) -> None:
        self.deltaglider_conn_id = deltaglider_conn_id
        self.region_name = region_name
        self.endpoint_url = endpoint_url
        self.client_config = {**(botocore_config or {}), **(client_config or {})} or None
        self.verify = verify
        self.ec2_region_check = ec2_region_check
        self.preflight_result: PreflightResult | None = None

    def connection_kwargs(self) -> dict[str, Any]:
        """The connection parameters as the hook and the triggers take them (one definition)."""
        return {
            "deltaglider_conn_id": self.deltaglider_conn_id,
            "region_name": self.region_name or None,
            "endpoint_url": self.endpoint_url or None,
            "client_config": self.client_config,
            "verify": self.verify,
        }

    @cached_property
    def hook(self) -> DeltaGliderHook:
        return DeltaGliderHook(**self.connection_kwargs())

    def close_hook(self) -> None:
        """Close the store the hook opened, if any (a later call opens a new one)."""
        if "hook" in self.__dict__:
            self.hook.close()

    def preflight_bucket(self) -> str | None:
        """The bucket data will move to or from (validated here, before any transfer)."""
        return None

    @fail_fast
    def pre_execute(self, context: Any) -> None:
        self.preflight_result = self.hook.preflight(self.preflight_bucket(), mode=self.ec2_region_check)


class DeltaGliderBaseOperator(DeltaGliderTaskMixin, BaseOperator):
    """Base of the DeltaGlider operators; see :class:`DeltaGliderTaskMixin` for the shared parameters."""

    template_fields: Sequence[str] = CONNECTION_TEMPLATE_FIELDS
    ui_color = "#d5ecf5"

    def __init__(
        self,
        *,
        deltaglider_conn_id: str = DeltaGliderHook.default_conn_name,
        region_name: str | None = None,
        endpoint_url: str | None = None,
        client_config: dict[str, Any] | None = None,
        ec2_region_check: str | None = None,
        verify: bool | str | None = None,
        botocore_config: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._init_deltaglider(
            deltaglider_conn_id, region_name, endpoint_url, client_config, ec2_region_check, verify, botocore_config
        )
