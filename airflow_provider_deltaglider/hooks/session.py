"""The boto3 S3 client behind a connection.

An ``aws`` connection is handed to the Amazon provider's own session machinery (``AwsBaseHook``): assumed
roles with refreshing credentials, web identity, profiles, ``session_kwargs``, ``service_config`` endpoints
and ``verify`` behave exactly as in that provider's S3 tasks. It is an optional extra
(``airflow-provider-deltaglider[amazon]``); without it, a connection that relies on any of those extras is
refused by name instead of running silently as the worker's own identity. A ``deltaglider`` connection
(keys, endpoint, region, ``verify``) needs only boto3.
"""

from __future__ import annotations

import importlib.util
from typing import Any

from .settings import ConnectionSettings, SettingsError

AMAZON_EXTRA = "pip install 'airflow-provider-deltaglider[amazon]' (apache-airflow-providers-amazon)"


def amazon_provider_installed() -> bool:
    return importlib.util.find_spec("airflow.providers.amazon") is not None


def s3_client(
    settings: ConnectionSettings,
    *,
    region_name: str | None,
    endpoint_url: str | None,
    verify: bool | str | None,
    config: dict[str, Any],
) -> Any:
    """The S3 client for ``settings``; the explicit arguments (hook/operator parameters) win over extras."""
    from botocore.config import Config

    verify = settings.verify if verify is None else verify
    if settings.conn_type == "aws" and amazon_provider_installed():
        return _amazon_client(
            settings, region_name=region_name, endpoint_url=endpoint_url, verify=verify, config=config
        )
    if settings.aws_session_extras:
        names = ", ".join(settings.aws_session_extras)
        if settings.conn_type == "aws":
            why = f"need the Amazon provider's session machinery, which is not installed: {AMAZON_EXTRA}"
        else:
            why = f"are honoured on connections of type 'aws' only: move them to one (with {AMAZON_EXTRA})"
        raise SettingsError(
            f"Connection {settings.conn_id!r}: extra(s) {names} {why}. Nothing was sent with the worker's own identity."
        )
    import boto3

    session = boto3.session.Session(
        aws_access_key_id=settings.access_key_id,
        aws_secret_access_key=settings.secret_access_key,
        aws_session_token=settings.session_token,
        region_name=region_name or settings.region_name,
    )
    return session.client(
        "s3", endpoint_url=endpoint_url or settings.endpoint_url, config=Config(**config), verify=verify
    )


def _amazon_client(
    settings: ConnectionSettings,
    *,
    region_name: str | None,
    endpoint_url: str | None,
    verify: bool | str | None,
    config: dict[str, Any],
) -> Any:
    from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook
    from botocore.config import Config

    aws = AwsBaseHook(
        aws_conn_id=settings.conn_id,
        client_type="s3",
        region_name=region_name,
        verify=verify,
        config=Config(**config),
    )
    if endpoint_url is None:
        return aws.get_client_type(region_name=region_name)
    session = aws.get_session(region_name=region_name)  # an explicit endpoint wins over service_config
    return session.client("s3", endpoint_url=endpoint_url, config=aws.config, verify=aws.verify)
