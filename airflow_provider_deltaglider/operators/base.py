"""What every DeltaGlider task shares: connection id, the hook, and the EC2 preflight in pre_execute."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import Any

from airflow.sdk import BaseOperator
from deltaglider_core.ec2 import PreflightResult
from deltaglider_core.format import parse_s3_url

from airflow_provider_deltaglider.hooks.deltaglider import DeltaGliderHook


def split_url(url: str) -> tuple[str, str]:
    """``s3://bucket/prefix`` -> (bucket, prefix); a clear error for anything else."""
    return parse_s3_url(url)


class DeltaGliderTaskMixin:
    """Connection settings, hook and preflight, for operators and sensors alike.

    :param deltaglider_conn_id: Airflow connection (type ``deltaglider`` or ``aws``).
    :param region_name: overrides the connection's region.
    :param endpoint_url: overrides the connection's endpoint URL.
    :param client_config: botocore ``Config`` keyword arguments merged over the connection's.
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
    ) -> None:
        self.deltaglider_conn_id = deltaglider_conn_id
        self.region_name = region_name
        self.endpoint_url = endpoint_url
        self.client_config = client_config
        self.ec2_region_check = ec2_region_check
        self.preflight_result: PreflightResult | None = None

    @cached_property
    def hook(self) -> DeltaGliderHook:
        return DeltaGliderHook(
            self.deltaglider_conn_id,
            region_name=self.region_name,
            endpoint_url=self.endpoint_url,
            client_config=self.client_config,
        )

    def preflight_bucket(self) -> str | None:
        """The bucket data will move to or from (validated here, before any transfer)."""
        return None

    def pre_execute(self, context: Any) -> None:
        self.preflight_result = self.hook.preflight(self.preflight_bucket(), mode=self.ec2_region_check)


class DeltaGliderBaseOperator(DeltaGliderTaskMixin, BaseOperator):
    """Base of the DeltaGlider operators; see :class:`DeltaGliderTaskMixin` for the shared parameters."""

    template_fields: Sequence[str] = ("deltaglider_conn_id",)
    ui_color = "#d5ecf5"

    def __init__(
        self,
        *,
        deltaglider_conn_id: str = DeltaGliderHook.default_conn_name,
        region_name: str | None = None,
        endpoint_url: str | None = None,
        client_config: dict[str, Any] | None = None,
        ec2_region_check: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._init_deltaglider(deltaglider_conn_id, region_name, endpoint_url, client_config, ec2_region_check)
