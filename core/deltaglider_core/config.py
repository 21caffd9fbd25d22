"""Defaults from ``DG_*`` environment variables, for whatever the caller did not pass."""

from __future__ import annotations

import os
from collections.abc import Mapping

from .errors import DeltaGliderError
from .policy import DEFAULT_MAX_RATIO

TRUE_WORDS = ("true", "1", "yes", "on")
FALSE_WORDS = ("false", "0", "no", "off")


def _env(env: Mapping[str, str] | None) -> Mapping[str, str]:
    return os.environ if env is None else env


def parse_flag(text: str) -> bool | None:
    """A switch's value read one way everywhere (environment variables, connection extras): true/false, 1/0,
    yes/no, on/off in any case and with surrounding spaces; None for anything else."""
    word = text.strip().lower()
    return True if word in TRUE_WORDS else False if word in FALSE_WORDS else None


def env_flag(name: str, default: bool, env: Mapping[str, str] | None = None) -> bool:
    """A ``DG_*`` switch: unset or empty gives ``default``; a value :func:`parse_flag` cannot read is refused
    naming the variable (a typo must not silently mean the opposite)."""
    raw = _env(env).get(name, "")
    if raw.strip() == "":
        return default
    value = parse_flag(raw)
    if value is None:
        raise DeltaGliderError(f"{name}={raw!r} is not a boolean: use true or false (1/0, yes/no, on/off).")
    return value


def max_ratio_from_env(env: Mapping[str, str] | None = None) -> float:
    raw = _env(env).get("DG_MAX_RATIO")
    if raw is None or raw == "":
        return DEFAULT_MAX_RATIO
    try:
        value = float(raw)
    except ValueError as exc:
        raise DeltaGliderError(f"DG_MAX_RATIO={raw!r} is not a number: use a value in (0, 1], e.g. 0.5.") from exc
    return validate_max_ratio(value)


def validate_max_ratio(value: float) -> float:
    if not 0.0 < value <= 1.0:
        raise DeltaGliderError(f"max_ratio={value!r} is out of range: use a value in (0, 1], e.g. 0.5.")
    return value


def cache_backend_from_env(env: Mapping[str, str] | None = None) -> str:
    return _env(env).get("DG_CACHE_BACKEND") or "filesystem"


def _megabytes(env: Mapping[str, str] | None, name: str, default: int) -> int:
    raw = _env(env).get(name) or str(default)
    try:
        return int(raw)
    except ValueError as exc:
        raise DeltaGliderError(f"{name}={raw!r} is not an integer number of megabytes.") from exc


def cache_memory_mb_from_env(env: Mapping[str, str] | None = None) -> int:
    return _megabytes(env, "DG_CACHE_MEMORY_SIZE_MB", 100)


def cache_disk_mb_from_env(env: Mapping[str, str] | None = None) -> int:
    return _megabytes(env, "DG_CACHE_DISK_SIZE_MB", 4096)


def deltaglider_compatible_from_env(env: Mapping[str, str] | None = None) -> bool:
    """``DG_DELTAGLIDER_COMPATIBLE``: keep every object readable by DeltaGlider 6 (see DeltaStore)."""
    return env_flag("DG_DELTAGLIDER_COMPATIBLE", False, env)


def encryption_key_from_env(env: Mapping[str, str] | None = None) -> str | None:
    return _env(env).get("DG_CACHE_ENCRYPTION_KEY") or None
