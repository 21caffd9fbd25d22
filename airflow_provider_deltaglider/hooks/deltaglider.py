"""DeltaGliderHook: the one place that turns an Airflow connection into a configured DeltaStore."""

from __future__ import annotations

from functools import cached_property
from typing import Any

from deltaglider_core import DeltaStore, Endpoint, StoreConfig
from deltaglider_core.ops import PreflightResult, preflight

from airflow_provider_deltaglider.compat import BaseHook, mask_secret

from .session import S3Connection, s3_client
from .settings import ConnectionSettings, settings_from_connection


def _mask(value: str | None) -> None:
    if value:
        mask_secret(value)


class DeltaGliderHook(BaseHook):
    """Delta-compressed artifact storage on S3 through a ``deltaglider`` (or ``aws``) connection.

    :param deltaglider_conn_id: connection id; login/password are the access key id / secret access key,
        extras carry ``endpoint_url``, ``region_name``, ``max_ratio``, cache and client settings. With no
        credentials, boto3's default chain (instance profile, IRSA, environment) applies.
    :param region_name: overrides the connection's region.
    :param endpoint_url: overrides the connection's endpoint (MinIO, SeaweedFS, R2, ...).
    :param client_config: botocore ``Config`` keyword arguments merged over the connection's.
    :param verify: TLS verification: a bool or a CA bundle path (default: the connection's ``verify`` extra).

    An ``aws`` connection goes through the Amazon provider's ``AwsBaseHook`` session machinery when that
    provider is installed (assume role, web identity, profiles, ``service_config``); see ``hooks/session.py``.
    """

    conn_name_attr = "deltaglider_conn_id"
    default_conn_name = "deltaglider_default"
    conn_type = "deltaglider"
    hook_name = "DeltaGlider (delta-compressed S3)"

    def __init__(
        self,
        deltaglider_conn_id: str = default_conn_name,
        region_name: str | None = None,
        endpoint_url: str | None = None,
        client_config: dict[str, Any] | None = None,
        verify: bool | str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.deltaglider_conn_id = deltaglider_conn_id
        self.region_name = region_name
        self.endpoint_url = endpoint_url
        self.client_config = dict(client_config or {})
        self.verify = verify
        self._store: DeltaStore | None = None

    @cached_property
    def settings(self) -> ConnectionSettings:
        conn = self.get_connection(self.deltaglider_conn_id)
        settings = settings_from_connection(conn, region_name=self.region_name, endpoint_url=self.endpoint_url)
        _mask(settings.secret_access_key)
        _mask(settings.session_token)
        return settings

    @cached_property
    def connection(self) -> S3Connection:
        """The boto3 client with its session's credentials and ``verify`` (see hooks/session.py)."""
        s = self.settings
        return s3_client(
            s,
            region_name=self.region_name,
            endpoint_url=self.endpoint_url,
            verify=self.verify,
            config={**s.client_config, **self.client_config},
        )

    @property
    def endpoint(self) -> Endpoint:
        """The connection set the store is made from: client, its credentials and verify, fast_transport."""
        c = self.connection
        return Endpoint(
            c.client, credentials=c.credentials, verify=c.verify, fast_transport=self.settings.fast_transport
        )

    @property
    def client(self) -> Any:
        return self.connection.client

    def get_conn(self) -> Any:
        return self.client

    def get_client(self) -> Any:
        """The underlying boto3 S3 client."""
        return self.client

    def close(self) -> None:
        """Close the store this hook made (idempotent); the next ``get_store()`` makes a new one."""
        store, self._store = self._store, None
        if store is not None:
            store.close()

    def __enter__(self) -> DeltaGliderHook:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def get_store(self) -> DeltaStore:
        """A ready DeltaStore (one per hook instance)."""
        if self._store is None:
            s = self.settings
            config = StoreConfig.from_env(
                max_ratio=s.max_ratio,
                cache_backend=s.cache_backend,
                cache_memory_size_mb=s.cache_memory_size_mb,
                cache_disk_size_mb=s.cache_disk_size_mb,
                memory_budget_mb=s.memory_budget_mb,
                allow_unconditional_writes=s.allow_unconditional_writes,
                deltaglider_compatible=s.deltaglider_compatible,
                strict=s.strict,
            )
            self._store = DeltaStore(self.endpoint, config)
        return self._store

    def bucket_region(self, bucket: str) -> str | None:
        """The bucket's region from HeadBucket's ``x-amz-bucket-region`` header (AWS S3 only)."""
        from botocore.exceptions import BotoCoreError, ClientError

        if self.settings.endpoint_url:
            return None
        try:
            resp = self.client.head_bucket(Bucket=bucket)
        except ClientError as exc:
            headers = exc.response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
            return headers.get("x-amz-bucket-region")
        except BotoCoreError:
            return None
        region = resp.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("x-amz-bucket-region")
        return str(region) if region else None

    def preflight(self, bucket: str | None = None, mode: str | None = None) -> PreflightResult:
        """EC2 region check before any data moves; logs one line, raises in ``fail`` mode on mismatch."""
        s = self.settings
        check = mode or s.ec2_region_check
        bucket_region = self.bucket_region(bucket) if bucket and check != "off" else None
        result = preflight(
            self.client.meta.region_name,
            region_explicit=s.region_explicit,
            endpoint_url=s.endpoint_url,
            bucket_region=bucket_region,
            mode=check,  # type: ignore[arg-type]  # validated by settings_from_connection
        )
        line = "DeltaGlider preflight: verdict=%s on_ec2=%s instance_region=%s az=%s s3_region=%s bucket_region=%s: %s"
        args = (
            result.verdict,
            result.on_ec2,
            result.instance_region,
            result.availability_zone,
            result.s3_region,
            result.bucket_region,
            result.message,
        )
        if result.is_mismatch and result.verdict != "mismatch_default":
            self.log.warning(line, *args)
        else:
            self.log.info(line, *args)
        return result

    def test_connection(self) -> tuple[bool, str]:
        """For the UI's Test button: list buckets (or HEAD the configured one) and report the real reason."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            bucket = (self.get_connection(self.deltaglider_conn_id).extra_dejson or {}).get("bucket")
            if bucket:
                self.client.head_bucket(Bucket=bucket)
                return True, f"Connection works: bucket {bucket!r} is reachable."
            count = len(self.client.list_buckets().get("Buckets", []))
            return True, f"Connection works: {count} bucket(s) visible."
        except ClientError as exc:
            error = exc.response.get("Error", {})
            if bucket and str(error.get("Code")) in ("404", "NoSuchBucket", "NotFound"):
                return False, f"Bucket {bucket!r} does not exist: create it or fix the connection's bucket extra."
            return False, f"S3 refused the request: {error.get('Code')}: {error.get('Message') or exc}"
        except (BotoCoreError, ValueError) as exc:
            return False, f"Could not reach S3: {exc}"

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        from airflow_provider_deltaglider.provider_info import UI_FIELD_BEHAVIOUR

        return {
            "hidden_fields": UI_FIELD_BEHAVIOUR["hidden-fields"],
            "relabeling": UI_FIELD_BEHAVIOUR["relabeling"],
            "placeholders": UI_FIELD_BEHAVIOUR["placeholders"],
        }

    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        """Form widgets for Airflow versions that do not read ``conn-fields`` from provider info.

        Airflow >= 3.2 renders the form from ``conn-fields`` (provider_info.py) and never calls this.
        """
        from wtforms import PasswordField, StringField

        from airflow_provider_deltaglider.provider_info import CONN_FIELDS

        widgets: dict[str, Any] = {}
        for name, spec in CONN_FIELDS.items():
            secret = spec["schema"].get("format") == "password"
            field_class = PasswordField if secret else StringField
            widgets[name] = field_class(spec["label"], description=spec.get("description", ""))
        return widgets
