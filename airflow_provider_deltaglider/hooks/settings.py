"""Turn an Airflow connection (type ``deltaglider`` or ``aws``) into client settings. No I/O here."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, overload
from urllib.parse import urlsplit

from botocore.config import Config
from botocore.exceptions import BotoCoreError
from deltaglider_core.ops import parse_flag

CHECK_MODES = ("warn", "fail", "off")
CACHE_BACKENDS = ("filesystem", "memory")


class ConnectionLike(Protocol):
    conn_id: str
    conn_type: str | None
    login: str | None
    password: str | None
    host: str | None

    @property
    def extra_dejson(self) -> dict[str, Any]: ...


class SettingsError(ValueError):
    """A connection field has a value the hook cannot use."""


# Extras of the Amazon provider's ``aws`` connection that only its session machinery honours (assumed roles,
# web identity, profiles, per-service endpoints). Never silently ignored: see ``aws_only_extras``.
AWS_SESSION_EXTRAS = (
    "role_arn",
    "assume_role_method",
    "assume_role_kwargs",
    "profile_name",
    "session_kwargs",
    "service_config",
    "aws_account_id",
    "aws_iam_role",
    "external_id",
)


@dataclass(frozen=True)
class ConnectionSettings:
    conn_id: str
    conn_type: str = "deltaglider"
    access_key_id: str | None = None
    secret_access_key: str | None = field(default=None, repr=False)
    session_token: str | None = field(default=None, repr=False)
    endpoint_url: str | None = None
    region_name: str | None = None
    max_ratio: float | None = None
    cache_backend: str | None = None
    cache_memory_size_mb: int | None = None
    cache_disk_size_mb: int | None = None
    memory_budget_mb: int | None = None
    ec2_region_check: str = "warn"
    client_config: dict[str, Any] = field(default_factory=dict)
    verify: bool | str | None = None
    aws_session_extras: tuple[str, ...] = ()
    allow_unconditional_writes: bool = False
    fast_transport: bool = True
    deltaglider_compatible: bool | None = None
    strict: bool | None = None  # None: DG_STRICT on the worker, else false

    @property
    def region_explicit(self) -> bool:
        return self.region_name is not None


def _first(extra: Mapping[str, Any], *names: str) -> Any:
    for name in names:
        value = extra.get(name)
        if value not in (None, ""):
            return value
    return None


def _number(conn_id: str, name: str, value: Any, kind: type, minimum: float | None = None) -> Any:
    """A numeric extra (None when absent): a finite number of ``kind``, at least ``minimum``; else an error
    naming the connection and the extra (``inf``, ``nan`` and negative counts included)."""
    if value is None:
        return None
    try:
        number = kind(value)
        if isinstance(value, bool) or not math.isfinite(number):
            raise ValueError(value)
        if kind is int and isinstance(value, float) and not value.is_integer():
            raise ValueError(value)  # 2.7 is not a count (int() would make it 2 without a word)
    except (TypeError, ValueError, OverflowError) as exc:
        raise SettingsError(f"Connection {conn_id!r}: extra {name}={value!r} is not a valid {kind.__name__}.") from exc
    if minimum is not None and number < minimum:
        raise SettingsError(f"Connection {conn_id!r}: extra {name}={value!r} must be at least {minimum:g}.")
    return number


def _client_config(conn_id: str, extra: Mapping[str, Any], custom_endpoint: bool) -> dict[str, Any]:
    raw = extra.get("config_kwargs") or {}
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise SettingsError(f"Connection {conn_id!r}: extra config_kwargs is not valid JSON.") from exc
    if not isinstance(raw, dict):
        raise SettingsError(f"Connection {conn_id!r}: extra config_kwargs must be a JSON object.")
    config: dict[str, Any] = dict(raw)
    retries = _number(conn_id, "retries", extra.get("retries"), int, minimum=1)  # attempts, the first included
    if retries is not None:
        config.setdefault("retries", {"max_attempts": retries, "mode": "standard"})
    config.setdefault("retries", {"max_attempts": 5, "mode": "standard"})
    pool = _number(conn_id, "max_pool_connections", extra.get("max_pool_connections"), int, minimum=1)
    config.setdefault("max_pool_connections", pool or 32)
    for name in ("connect_timeout", "read_timeout"):
        value = _number(conn_id, name, extra.get(name), float, minimum=0.001)
        if value is not None:
            config.setdefault(name, value)
    if custom_endpoint:
        # boto3 >= 1.36 sends CRC checksums that several S3-compatible stores reject.
        config.setdefault("request_checksum_calculation", "when_required")
        config.setdefault("response_checksum_validation", "when_required")
    for name, minimum in (("connect_timeout", 0.001), ("read_timeout", 0.001), ("max_pool_connections", 1)):
        if name in raw:  # the same rules as the top-level extras, for values given inside config_kwargs
            config[name] = _number(conn_id, f"config_kwargs.{name}", raw[name], type(minimum), minimum)
    attempts = (config.get("retries") or {}).get("max_attempts") if isinstance(config.get("retries"), dict) else None
    if attempts is not None:
        _number(conn_id, "config_kwargs.retries.max_attempts", attempts, int, 1)
    try:  # botocore checks names and values now, not as a (retryable) error of the first request
        Config(**config)
    except (TypeError, ValueError, BotoCoreError) as exc:
        raise SettingsError(
            f"Connection {conn_id!r}: extra config_kwargs is not a botocore Config ({exc}): see "
            "https://botocore.amazonaws.com/v1/documentation/api/latest/reference/config.html"
        ) from exc
    return config


def _verify(conn_id: str, value: Any) -> bool | str | None:
    """``verify``: a bool (also "true"/"false") or the path of a CA bundle that must exist."""
    if value is None or value == "" or isinstance(value, bool):
        return value if isinstance(value, bool) else None
    text = str(value).strip()
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    import os

    if not os.path.isfile(text):
        raise SettingsError(
            f"Connection {conn_id!r}: verify={text!r} is neither true/false nor an existing CA bundle file."
        )
    return text


def aws_only_extras(extra: Mapping[str, Any]) -> tuple[str, ...]:
    """The extras present that only the Amazon provider's session machinery can honour."""
    return tuple(name for name in AWS_SESSION_EXTRAS if extra.get(name) not in (None, "", {}, []))


@overload
def _flag(conn_id: str, extra: dict[str, Any], name: str, default: bool) -> bool: ...


@overload
def _flag(conn_id: str, extra: dict[str, Any], name: str, default: None = None) -> bool | None: ...


def _flag(conn_id: str, extra: dict[str, Any], name: str, default: bool | None = None) -> bool | None:
    """A boolean extra, read one way for all of them: a JSON bool or true/false, 1/0, yes/no, on/off (any
    case); absent or empty gives ``default``; anything else is an error naming the connection and extra (a
    typo must not silently mean true for one flag and false for another)."""
    value = extra.get(name)
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    parsed = parse_flag(str(value))
    if parsed is not None:
        return parsed
    raise SettingsError(
        f"Connection {conn_id!r}: {name}={value!r} is not a boolean; use true or false (1/0, yes/no, on/off)."
    )


def settings_from_connection(
    conn: ConnectionLike, *, region_name: str | None = None, endpoint_url: str | None = None
) -> ConnectionSettings:
    """Read a connection, accepting the Amazon provider's extra names too."""
    extra = conn.extra_dejson or {}
    host = conn.host if conn.host and conn.host.startswith(("http://", "https://")) else None
    endpoint = endpoint_url or _first(extra, "endpoint_url", "host") or host
    if endpoint is not None and not str(endpoint).startswith(("http://", "https://")):
        raise SettingsError(
            f"Connection {conn.conn_id!r}: endpoint_url {endpoint!r} must start with http:// or https://."
        )
    try:
        parts = urlsplit(str(endpoint)) if endpoint is not None else None
        _ = parts.port if parts is not None else None  # a port that is not a number fails here, not later
    except ValueError as exc:
        raise SettingsError(f"Connection {conn.conn_id!r}: endpoint_url is not a valid URL ({exc}).") from exc
    if parts is not None and "@" in parts.netloc:
        raise SettingsError(  # never echoed: the URL holds a secret
            f"Connection {conn.conn_id!r}: endpoint_url carries credentials (user:password@host), which would be "
            "sent and logged as part of the URL: give the host alone, and the keys as the connection's login and "
            "password."
        )
    check = str(_first(extra, "ec2_region_check") or "warn").lower()
    if check not in CHECK_MODES:
        raise SettingsError(f"Connection {conn.conn_id!r}: ec2_region_check={check!r}; use one of {CHECK_MODES}.")
    backend = _first(extra, "cache_backend")
    if backend is not None and backend not in CACHE_BACKENDS:
        raise SettingsError(f"Connection {conn.conn_id!r}: cache_backend={backend!r}; use one of {CACHE_BACKENDS}.")
    max_ratio = _number(conn.conn_id, "max_ratio", _first(extra, "max_ratio"), float)
    if max_ratio is not None and not 0 < max_ratio <= 1:
        raise SettingsError(f"Connection {conn.conn_id!r}: max_ratio={max_ratio} must be in (0, 1].")
    return ConnectionSettings(
        conn_id=conn.conn_id,
        conn_type=str(getattr(conn, "conn_type", None) or "deltaglider"),
        verify=_verify(conn.conn_id, extra.get("verify")),
        allow_unconditional_writes=_flag(conn.conn_id, extra, "allow_unconditional_writes", default=False),
        fast_transport=_flag(conn.conn_id, extra, "fast_transport", default=True),
        deltaglider_compatible=_flag(conn.conn_id, extra, "deltaglider_compatible"),
        strict=_flag(conn.conn_id, extra, "strict"),
        aws_session_extras=aws_only_extras(extra),
        access_key_id=conn.login or _first(extra, "aws_access_key_id"),
        secret_access_key=conn.password or _first(extra, "aws_secret_access_key"),
        session_token=_first(extra, "aws_session_token"),
        endpoint_url=endpoint,
        region_name=region_name or _first(extra, "region_name", "region"),
        max_ratio=max_ratio,
        cache_backend=backend,
        cache_memory_size_mb=_number(
            conn.conn_id, "cache_memory_size_mb", _first(extra, "cache_memory_size_mb"), int, 0
        ),
        cache_disk_size_mb=_number(conn.conn_id, "cache_disk_size_mb", _first(extra, "cache_disk_size_mb"), int, 0),
        memory_budget_mb=_number(conn.conn_id, "memory_budget_mb", _first(extra, "memory_budget_mb"), int, 1),
        ec2_region_check=check,
        client_config=_client_config(conn.conn_id, extra, endpoint is not None),
    )
