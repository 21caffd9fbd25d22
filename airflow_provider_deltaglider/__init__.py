"""Apache Airflow provider for delta-compressed artifact storage on S3 (DeltaGlider v6 compatible)."""

from __future__ import annotations

__version__ = "0.1.0"
