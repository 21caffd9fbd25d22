"""Apache Airflow provider for delta-compressed artifact storage on S3 (DeltaGlider v6 compatible)."""

from __future__ import annotations

__version__ = "0.1.0"


def get_provider_info() -> dict[str, object]:
    from airflow_provider_deltaglider.provider_info import get_provider_info as _info

    return _info()
