"""StoreConfig: every setting of a DeltaStore as one frozen value, built once (as s3transfer's TransferConfig).

``StoreConfig(...)`` takes the documented defaults for whatever it is not given; ``StoreConfig.from_env()``
takes them from the ``DG_*`` environment variables first (docs/connection.md lists them). Values are checked
when the config is made, so a bad setting fails before any data moves, naming the setting and the fix.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from deltaglider_core.codec.budget import budget_from
from deltaglider_core.errors import DeltaGliderError
from deltaglider_core.storage.policy import DEFAULT_DELTA_EXTENSIONS, DEFAULT_MAX_RATIO, normalise_extensions
from deltaglider_core.support.env import env_flag, environ

CACHE_BACKENDS = ("filesystem", "memory")


def validate_max_ratio(value: float) -> float:
    if not 0.0 < value <= 1.0:
        raise DeltaGliderError(f"max_ratio={value!r} is out of range: use a value in (0, 1], e.g. 0.5.")
    return value


@dataclass(frozen=True)
class StoreConfig:
    """The settings of one DeltaStore; a setting given as ``None`` takes its default.

    :param max_ratio: a delta larger than this fraction of the file is not kept: the file is stored whole.
    :param cache_backend: ``filesystem`` (default) or ``memory``, for references the store made itself.
    :param cache_memory_size_mb: / :param cache_disk_size_mb: the cache's bound.
    :param encryption_key: the cache's key (32 url-safe base64 bytes); default: a key per process.
    :param delta_extensions: the file suffixes stored as deltas; everything else is stored whole.
    :param rebase: start a new reference when the old one has drifted from the files (policy.py).
    :param allow_unconditional_writes: create references on a server that ignores conditional writes.
    :param deltaglider_compatible: keep every object readable by DeltaGlider 6 (docs/format.md).
    :param max_workers: transfers and codec calls in parallel.
    :param memory_budget_mb: memory the codec may use (default: half the cgroup limit, else 1024).
    :param multipart_threshold: files at least this large go up in parts (default 256 MiB).
    :param strict: refuse to read an object that records no SHA-256 (``dg-file-sha256``: objects other tools
        wrote), instead of reading it unverified with a warning (the default).
    """

    max_ratio: float = DEFAULT_MAX_RATIO
    cache_backend: str = "filesystem"
    cache_memory_size_mb: int = 100
    cache_disk_size_mb: int = 4096
    encryption_key: str | bytes | None = field(default=None, repr=False)
    delta_extensions: frozenset[str] = DEFAULT_DELTA_EXTENSIONS
    rebase: bool = True
    allow_unconditional_writes: bool = False
    deltaglider_compatible: bool = False
    max_workers: int = 16
    memory_budget_mb: int | str | None = None
    multipart_threshold: int | None = None
    strict: bool = False

    def __post_init__(self) -> None:
        for setting in fields(self):  # None means "not given": the default (as from_env reads it)
            if getattr(self, setting.name) is None and setting.default is not None:
                object.__setattr__(self, setting.name, setting.default)
        validate_max_ratio(self.max_ratio)
        if self.cache_backend not in CACHE_BACKENDS:
            raise DeltaGliderError(
                f"Unknown cache backend {self.cache_backend!r}: use one of {', '.join(CACHE_BACKENDS)}."
            )
        object.__setattr__(self, "delta_extensions", normalise_extensions(self.delta_extensions))
        for size in ("cache_memory_size_mb", "cache_disk_size_mb"):
            if getattr(self, size) < 0:
                raise DeltaGliderError(f"{size}={getattr(self, size)!r}: a size cannot be negative (0 keeps nothing).")
        if self.max_workers < 1:
            raise DeltaGliderError(f"max_workers={self.max_workers!r}: use 1 or more.")
        self.memory_budget  # noqa: B018 - checks the budget now, naming the setting

    @property
    def memory_budget(self) -> int:
        """The codec's memory budget in bytes (codec/budget.py)."""
        return budget_from(self.memory_budget_mb, what="memory_budget_mb (DG_MEMORY_BUDGET_MB)")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **given: Any) -> StoreConfig:
        """``given`` settings (``None`` = not given), the rest from ``DG_*`` variables, then the defaults."""
        source = environ(env)
        values = {k: v for k, v in given.items() if v is not None}
        unknown = set(values) - {f.name for f in fields(cls)}
        if unknown:
            raise TypeError(f"StoreConfig has no setting(s) {', '.join(sorted(unknown))}")
        if "max_ratio" not in values and source.get("DG_MAX_RATIO"):
            values["max_ratio"] = _number(source["DG_MAX_RATIO"])
        if "cache_backend" not in values and source.get("DG_CACHE_BACKEND"):
            values["cache_backend"] = source["DG_CACHE_BACKEND"]
            if values["cache_backend"] not in CACHE_BACKENDS:
                raise DeltaGliderError(
                    f"DG_CACHE_BACKEND={values['cache_backend']!r} is not a cache backend: use one of "
                    f"{', '.join(CACHE_BACKENDS)}."
                )
        # A size given is the size: 0 keeps no entries (until 0.1 it silently meant the default).
        for name, variable in (("cache_memory_size_mb", "DG_CACHE_MEMORY_SIZE_MB"),
                               ("cache_disk_size_mb", "DG_CACHE_DISK_SIZE_MB")):  # fmt: skip
            if name not in values and source.get(variable):
                values[name] = _megabytes(variable, source[variable])
        if "encryption_key" not in values and source.get("DG_CACHE_ENCRYPTION_KEY"):
            values["encryption_key"] = source["DG_CACHE_ENCRYPTION_KEY"]
        if "deltaglider_compatible" not in values:
            values["deltaglider_compatible"] = env_flag("DG_DELTAGLIDER_COMPATIBLE", False, source)
        if "strict" not in values:
            values["strict"] = env_flag("DG_STRICT", False, source)
        if "memory_budget_mb" not in values and source.get("DG_MEMORY_BUDGET_MB"):
            values["memory_budget_mb"] = source["DG_MEMORY_BUDGET_MB"]
        return cls(**values)


def _number(raw: str) -> float:
    try:
        return float(raw)
    except ValueError as exc:
        raise DeltaGliderError(f"DG_MAX_RATIO={raw!r} is not a number: use a value in (0, 1], e.g. 0.5.") from exc


def _megabytes(name: str, raw: str) -> int:
    try:
        value = int(raw)
    except ValueError as exc:
        raise DeltaGliderError(f"{name}={raw!r} is not an integer number of megabytes.") from exc
    if value < 0:
        raise DeltaGliderError(f"{name}={raw!r}: a size cannot be negative (0 keeps nothing).")
    return value
