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
from dataclasses import dataclass
from typing import Any

from .settings import ConnectionSettings, SettingsError

AMAZON_EXTRA = "pip install 'airflow-provider-deltaglider[amazon]' (apache-airflow-providers-amazon)"


def amazon_provider_installed() -> bool:
    return importlib.util.find_spec("airflow.providers.amazon") is not None


@dataclass(frozen=True)
class S3Connection:
    """A boto3 S3 client with what the engine's fast transport needs to behave exactly like it: the session's
    credentials (refreshable: assumed roles renew) and the ``verify`` value the client was made with."""

    client: Any
    credentials: Any
    verify: bool | str | None


def s3_client(
    settings: ConnectionSettings,
    *,
    region_name: str | None,
    endpoint_url: str | None,
    verify: bool | str | None,
    config: dict[str, Any],
) -> S3Connection:
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
    client = session.client(
        "s3", endpoint_url=endpoint_url or settings.endpoint_url, config=Config(**config), verify=verify
    )
    return S3Connection(client, session.get_credentials(), verify)


def _amazon_client(
    settings: ConnectionSettings,
    *,
    region_name: str | None,
    endpoint_url: str | None,
    verify: bool | str | None,
    config: dict[str, Any],
) -> S3Connection:
    from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook
    from botocore.config import Config

    aws = AwsBaseHook(
        aws_conn_id=settings.conn_id,
        client_type="s3",
        region_name=region_name,
        verify=verify,
        config=Config(**config),
    )
    session = aws.get_session(region_name=region_name)
    # An explicit endpoint wins over the connection's service_config (which AwsBaseHook's clients use).
    endpoint = endpoint_url or aws.conn_config.get_service_endpoint_url(service_name="s3")
    client = session.client("s3", endpoint_url=endpoint, config=aws.config, verify=aws.verify)
    return S3Connection(client, session.get_credentials(), aws.verify)
