"""deltaglider_core: delta-compressed artifact storage on S3, compatible with DeltaGlider 6 buckets.

No Airflow import anywhere in this package.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

from .errors import (
    BucketNotFound,
    CodecError,
    DeltaGliderError,
    IntegrityError,
    InvalidLocation,
    NotFound,
    ReferenceInUse,
    StorageError,
)

if TYPE_CHECKING:
    from .models import DeleteResult, GetResult, ObjectInfo, PutResult
    from .store import DeltaStore

# Imported on first use: the codec worker processes (``-m deltaglider_core.codec_worker``) import this package
# and need none of boto3/urllib3 (~170 ms of CPU per worker start when this file imported the store).
_LAZY = {"DeltaStore": "store", "DeleteResult": "models", "GetResult": "models", "ObjectInfo": "models",
         "PutResult": "models"}  # fmt: skip


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


__all__ = [
    "BucketNotFound",
    "CodecError",
    "DeleteResult",
    "DeltaGliderError",
    "DeltaStore",
    "GetResult",
    "IntegrityError",
    "InvalidLocation",
    "NotFound",
    "ObjectInfo",
    "PutResult",
    "ReferenceInUse",
    "StorageError",
    "__version__",
]
