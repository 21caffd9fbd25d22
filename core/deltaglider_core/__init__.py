"""deltaglider_core: delta-compressed artifact storage on S3, compatible with DeltaGlider 6 buckets.

The public API is what this module exports (and :mod:`deltaglider_core.ops` for the operations built on it);
everything else is internal and may move (docs/architecture.md). No Airflow import anywhere in this package.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

from deltaglider_core.errors import (
    AccessDenied,
    BucketNotFound,
    CodecError,
    DeltaGliderError,
    IntegrityError,
    InvalidLocation,
    NotFound,
    ReferenceInUse,
    SourceChanged,
    StorageError,
)

if TYPE_CHECKING:
    from deltaglider_core.models import DeleteResult, GetResult, ObjectInfo, PutResult
    from deltaglider_core.storage.config import StoreConfig
    from deltaglider_core.storage.format import Location, folder, parse_s3_url
    from deltaglider_core.storage.store import DeltaStore
    from deltaglider_core.transport.endpoint import Endpoint

# Imported on first use: the codec worker processes (``-m deltaglider_core.codec.worker``) import this package
# and need none of boto3/urllib3 (~170 ms of CPU per worker start when this file imported the store).
_LAZY = {
    "DeltaStore": "storage.store",
    "StoreConfig": "storage.config",
    "Endpoint": "transport.endpoint",
    "Location": "storage.format",
    "folder": "storage.format",
    "parse_s3_url": "storage.format",
    "DeleteResult": "models",
    "GetResult": "models",
    "ObjectInfo": "models",
    "PutResult": "models",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


__all__ = [
    "AccessDenied",
    "BucketNotFound",
    "CodecError",
    "DeleteResult",
    "DeltaGliderError",
    "DeltaStore",
    "Endpoint",
    "GetResult",
    "IntegrityError",
    "InvalidLocation",
    "Location",
    "NotFound",
    "ObjectInfo",
    "PutResult",
    "ReferenceInUse",
    "SourceChanged",
    "StorageError",
    "StoreConfig",
    "__version__",
    "folder",
    "parse_s3_url",
]
