"""Provider metadata for Airflow's providers manager (entry point ``apache_airflow_provider``).

The connection form is declared here (``conn-fields``, ``ui-field-behaviour``), so Airflow 3's API
server renders it without importing the hook.
"""

from __future__ import annotations

from typing import Any

PACKAGE = "airflow-provider-deltaglider"

UI_FIELD_BEHAVIOUR: dict[str, Any] = {
    "hidden-fields": ["schema", "port", "host"],
    "relabeling": {"login": "AWS Access Key ID", "password": "AWS Secret Access Key"},
    "placeholders": {
        "login": "leave empty to use the instance profile / IRSA / environment",
        "password": "leave empty to use the instance profile / IRSA / environment",
        "extra": '{"region_name": "eu-west-1"}',
    },
}

CONN_FIELDS: dict[str, Any] = {
    "endpoint_url": {
        "label": "Endpoint URL",
        "description": "S3-compatible endpoint (MinIO, SeaweedFS, R2, Hetzner). Empty for AWS S3.",
        "schema": {"type": ["string", "null"], "format": "url"},
    },
    "region_name": {
        "label": "Region",
        "description": "S3 region, e.g. eu-west-1.",
        "schema": {"type": ["string", "null"]},
    },
    "aws_session_token": {
        "label": "Session token",
        "description": "Temporary-credential session token.",
        "schema": {"type": ["string", "null"], "format": "password"},
    },
    "max_ratio": {
        "label": "Max delta ratio",
        "description": "Store a file directly when its delta exceeds this fraction of its size (default 0.5).",
        "schema": {"type": ["number", "null"], "minimum": 0, "maximum": 1},
    },
    "cache_backend": {
        "label": "Reference cache",
        "description": "filesystem (default) or memory.",
        "schema": {"type": ["string", "null"], "enum": ["filesystem", "memory", None]},
    },
    "cache_memory_size_mb": {
        "label": "Memory cache size (MB)",
        "description": "Cap of the memory cache backend (default 100).",
        "schema": {"type": ["integer", "null"], "minimum": 1},
    },
    "cache_disk_size_mb": {
        "label": "Disk cache size (MB)",
        "description": "Cap of the filesystem cache backend (default 4096); least recently used references go.",
        "schema": {"type": ["integer", "null"], "minimum": 1},
    },
    "memory_budget_mb": {
        "label": "Memory budget (MB)",
        "description": "Memory a task's delta work may use (default: half the cgroup limit, else 1024).",
        "schema": {"type": ["integer", "null"], "minimum": 64},
    },
    "ec2_region_check": {
        "label": "EC2 region check",
        "description": "warn (default), fail, or off: compare the worker's EC2 region with the S3 region.",
        "schema": {"type": ["string", "null"], "enum": ["warn", "fail", "off", None]},
    },
    "max_pool_connections": {
        "label": "Max pool connections",
        "description": "boto3 connection pool size (default 32).",
        "schema": {"type": ["integer", "null"], "minimum": 1},
    },
    "retries": {
        "label": "Max attempts",
        "description": "boto3 retry attempts, standard mode (default 5).",
        "schema": {"type": ["integer", "null"], "minimum": 1},
    },
    "connect_timeout": {
        "label": "Connect timeout (s)",
        "description": "Seconds to wait for a connection to S3 (botocore default 60).",
        "schema": {"type": ["number", "null"], "minimum": 0},
    },
    "read_timeout": {
        "label": "Read timeout (s)",
        "description": "Seconds to wait for data from S3 (botocore default 60).",
        "schema": {"type": ["number", "null"], "minimum": 0},
    },
    "verify": {
        "label": "Verify TLS",
        "description": "true (default), false, or the path of a CA bundle on the workers.",
        "schema": {"type": ["string", "null"]},
    },
    "config_kwargs": {
        "label": "botocore Config (JSON)",
        "description": 'Other botocore Config arguments as a JSON object, e.g. {"s3": {"addressing_style": "path"}}.',
        "schema": {"type": ["string", "null"]},
    },
    "allow_unconditional_writes": {
        "label": "Allow servers without conditional writes",
        "description": "Only for S3-compatible servers that ignore If-None-Match and one writer per prefix.",
        "schema": {"type": ["boolean", "null"]},
    },
    "fast_transport": {
        "label": "Fast HEAD/LIST transport",
        "description": "true (default): HEAD, LIST and small GETs skip botocore's overhead; false: all through boto3.",
        "schema": {"type": ["boolean", "null"]},
    },
    "deltaglider_compatible": {
        "label": "Readable by DeltaGlider 6",
        "description": "true: .gz/.bz2/.xz files stored whole, readable by DeltaGlider 6; default false.",
        "schema": {"type": ["boolean", "null"]},
    },
    "strict": {
        "label": "Strict reads",
        "description": "true: refuse objects that record no SHA-256 (other tools' uploads); default false: read, warn.",
        "schema": {"type": ["boolean", "null"]},
    },
    "bucket": {
        "label": "Bucket (Test button)",
        "description": "The bucket the connection's Test button checks with HeadBucket (optional).",
        "schema": {"type": ["string", "null"]},
    },
}


def get_provider_info() -> dict[str, Any]:
    """What ``airflow providers list`` and the connection form know about this provider."""
    from airflow_provider_deltaglider import __version__

    return {
        "package-name": PACKAGE,
        "name": "DeltaGlider",
        "description": "Delta-compressed artifact storage on S3 (DeltaGlider v6 compatible).",
        "versions": [__version__],
        "integrations": [
            {"integration-name": "DeltaGlider", "external-doc-url": "https://pypi.org/project/deltaglider/"}
        ],
        "connection-types": [
            {
                "connection-type": "deltaglider",
                "hook-class-name": "airflow_provider_deltaglider.hooks.deltaglider.DeltaGliderHook",
                "hook-name": "DeltaGlider (delta-compressed S3)",
                "ui-field-behaviour": UI_FIELD_BEHAVIOUR,
                "conn-fields": CONN_FIELDS,
            }
        ],
        "hooks": [
            {"integration-name": "DeltaGlider", "python-modules": ["airflow_provider_deltaglider.hooks.deltaglider"]}
        ],
        "operators": [
            {
                "integration-name": "DeltaGlider",
                "python-modules": [
                    "airflow_provider_deltaglider.operators.upload",
                    "airflow_provider_deltaglider.operators.download",
                    "airflow_provider_deltaglider.operators.sync",
                    "airflow_provider_deltaglider.operators.migrate",
                    "airflow_provider_deltaglider.operators.stats",
                    "airflow_provider_deltaglider.operators.prune",
                ],
            }
        ],
        "sensors": [
            {"integration-name": "DeltaGlider", "python-modules": ["airflow_provider_deltaglider.sensors.release"]}
        ],
        "triggers": [
            {"integration-name": "DeltaGlider", "python-modules": ["airflow_provider_deltaglider.triggers.release"]}
        ],
    }
