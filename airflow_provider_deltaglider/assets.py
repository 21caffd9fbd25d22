"""The one naming rule for the assets a deltaspace is known by.

A deltaspace ``s3://bucket/prefix/`` is the asset named and addressed ``s3://bucket/prefix``: no trailing
slash, name equal to URI. Airflow normalises an asset's URI (dropping the slash) but keeps its name as
given, so ``Asset("s3://b/p/")`` and ``Asset("s3://b/p")`` would be two names for one URI, and Airflow then
marks one inactive (a producing task fails with ``AirflowInactiveAssetInInletOrOutletException``, or a
consumer is silently never scheduled). The upload operator's automatic outlet and the examples use
:func:`deltaspace_asset`; a consumer can use it too, or write the canonical ``Asset("s3://bucket/prefix")``.

The releases of a deltaspace that an ``AssetWatcher`` announces are another asset,
:func:`release_asset` (``s3://bucket/prefix/<pattern>``): were they the deltaspace's own asset, a DAG
scheduled on it would run twice per release, once for the upload task's event and once for the watcher's.
The upload operator's templated destinations report through :data:`UPLOADS_ALIAS`.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import Asset, AssetAlias
from deltaglider_core import parse_s3_url


def canonical_uri(location: str) -> str:
    """``s3://bucket/prefix/`` -> ``s3://bucket/prefix`` (the bucket alone: ``s3://bucket``)."""
    bucket, prefix = parse_s3_url(location)
    prefix = prefix.strip("/")
    return f"s3://{bucket}/{prefix}" if prefix else f"s3://{bucket}"


def deltaspace_asset(location: str, **kwargs: Any) -> Asset:
    """The asset of a deltaspace, named and addressed by :func:`canonical_uri` (``watchers`` etc. pass through)."""
    uri = canonical_uri(location)
    return Asset(name=uri, uri=uri, **kwargs)


UPLOADS_ALIAS = "deltaglider-uploads"  # upload tasks whose destination is a template report through this alias


def uploads_alias() -> AssetAlias:
    """The alias an upload task with a templated ``dest`` emits its deltaspace's asset event through (the
    rendered destination is known only when the task runs)."""
    return AssetAlias(name=UPLOADS_ALIAS)


def release_asset(location: str, pattern: str, **kwargs: Any) -> Asset:
    """The asset of the releases matching ``pattern`` in a deltaspace, for an ``AssetWatcher``: named and
    addressed ``s3://bucket/prefix/<pattern>``, distinct from the deltaspace's own asset."""
    if not pattern or "/" in pattern:
        raise ValueError(f"release pattern {pattern!r} must be a file-name pattern such as 'app-*.zip'")
    uri = f"{canonical_uri(location)}/{pattern}"
    return Asset(uri=uri, name=uri, **kwargs)
