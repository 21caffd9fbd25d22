"""deltaglider_core: delta-compressed artifact storage on S3, compatible with DeltaGlider 6 buckets.

No Airflow import anywhere in this package.
"""

from __future__ import annotations

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
from .models import DeleteResult, GetResult, ObjectInfo, PutResult
from .store import DeltaStore

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
