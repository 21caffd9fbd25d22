"""EC2 region preflight: warn (or fail) before cross-region S3 traffic is billed.

Detection uses IMDSv2 only: PUT ``/latest/api/token`` then GET the placement with that token, 1 s
timeouts, cached per process. ``AWS_EC2_METADATA_DISABLED`` / ``DG_DISABLE_EC2_DETECTION`` turn it off and
``AWS_EC2_METADATA_SERVICE_ENDPOINT`` points it elsewhere. A host that only speaks IMDSv1 is "not
verifiable": logged, never fatal.
"""

from __future__ import annotations

import os
import threading
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal

from deltaglider_core.errors import DeltaGliderError
from deltaglider_core.models import jsonable
from deltaglider_core.support.env import env_flag, parse_flag

DEFAULT_IMDS = "http://169.254.169.254"
TOKEN_TTL = "21600"
Verdict = Literal["skipped", "not_on_ec2", "unverifiable", "aligned", "mismatch", "mismatch_default"]
Mode = Literal["warn", "fail", "off"]


@dataclass(frozen=True)
class Ec2Identity:
    """What IMDS said. ``on_ec2`` is None when a metadata service answered but could not be verified."""

    on_ec2: bool | None
    region: str | None = None
    availability_zone: str | None = None
    reason: str = ""


@dataclass(frozen=True)
class PreflightResult:
    on_ec2: bool | None
    instance_region: str | None
    availability_zone: str | None
    s3_region: str | None
    bucket_region: str | None
    verdict: Verdict
    message: str

    def to_dict(self) -> dict[str, Any]:
        return dict(jsonable(asdict(self)))

    @property
    def is_mismatch(self) -> bool:
        return self.verdict in ("mismatch", "mismatch_default") or (
            self.bucket_region is not None and self.s3_region is not None and self.bucket_region != self.s3_region
        )


class RegionMismatch(DeltaGliderError):
    """Raised in ``fail`` mode when the task would move data across regions."""


_cache: dict[str, Ec2Identity] = {}
_cache_lock = threading.Lock()


def _disabled(env: Mapping[str, str]) -> bool:
    """``DG_DISABLE_EC2_DETECTION`` (a switch, read as every ``DG_*`` switch is) or botocore's own
    ``AWS_EC2_METADATA_DISABLED`` (not ours to refuse: any true word counts, anything else does not)."""
    return parse_flag(env.get("AWS_EC2_METADATA_DISABLED", "")) is True or env_flag(
        "DG_DISABLE_EC2_DETECTION", False, env
    )


def _request(url: str, method: str, headers: dict[str, str], timeout: float) -> str:
    req = urllib.request.Request(url, method=method, headers=headers)
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return str(resp.read().decode().strip())


def query_imds(endpoint: str, timeout: float = 1.0) -> Ec2Identity:
    """Ask an IMDSv2 endpoint for the instance placement (no caching)."""
    base = endpoint.rstrip("/")
    try:
        token = _request(
            f"{base}/latest/api/token", "PUT", {"X-aws-ec2-metadata-token-ttl-seconds": TOKEN_TTL}, timeout
        )
    except urllib.error.HTTPError as exc:
        return Ec2Identity(None, reason=f"IMDS at {base} refused an IMDSv2 token (HTTP {exc.code}); IMDSv1 not used")
    except (OSError, ValueError) as exc:
        return Ec2Identity(False, reason=f"no instance metadata service at {base} ({type(exc).__name__})")
    headers = {"X-aws-ec2-metadata-token": token}
    try:
        region = _request(f"{base}/latest/meta-data/placement/region", "GET", headers, timeout)
        zone = _request(f"{base}/latest/meta-data/placement/availability-zone", "GET", headers, timeout)
    except (OSError, ValueError) as exc:
        return Ec2Identity(None, reason=f"IMDS at {base} gave a token but no placement ({exc})")
    return Ec2Identity(True, region, zone)


def detect_ec2(env: Mapping[str, str] | None = None, timeout: float = 1.0) -> Ec2Identity:
    """This process's EC2 identity, asked once per IMDS endpoint per process."""
    env = os.environ if env is None else env
    if _disabled(env):
        return Ec2Identity(False, reason="EC2 detection disabled by environment")
    endpoint = env.get("AWS_EC2_METADATA_SERVICE_ENDPOINT") or DEFAULT_IMDS
    with _cache_lock:
        cached = _cache.get(endpoint)
    if cached is not None:
        return cached
    identity = query_imds(endpoint, timeout)
    with _cache_lock:
        _cache[endpoint] = identity
    return identity


def clear_cache() -> None:
    with _cache_lock:
        _cache.clear()


def evaluate(
    identity: Ec2Identity,
    s3_region: str | None,
    *,
    region_explicit: bool,
    bucket_region: str | None = None,
) -> PreflightResult:
    """Turn an identity and the client's region into a verdict and a one-line message."""

    def result(verdict: Verdict, message: str) -> PreflightResult:
        if bucket_region and s3_region and bucket_region != s3_region:
            message += f"; bucket is in {bucket_region} but the S3 client uses {s3_region}"
        return PreflightResult(
            identity.on_ec2, identity.region, identity.availability_zone, s3_region, bucket_region, verdict, message
        )

    if identity.on_ec2 is None:
        return result("unverifiable", f"EC2 placement not verifiable: {identity.reason}; S3 region {s3_region}")
    if not identity.on_ec2:
        return result("not_on_ec2", f"not on EC2 ({identity.reason}); S3 region {s3_region}")
    if identity.region == s3_region:
        return result("aligned", f"EC2 instance in {identity.region} ({identity.availability_zone}) and S3 aligned")
    if region_explicit:
        return result(
            "mismatch",
            f"EC2 instance in {identity.region} but S3 region set to {s3_region}: cross-region transfer charges "
            "apply to every byte moved",
        )
    return result(
        "mismatch_default",
        f"EC2 instance in {identity.region} but the S3 client defaulted to {s3_region}: set region_name="
        f"{identity.region!r} on the connection if the bucket is there",
    )


def preflight(
    s3_region: str | None,
    *,
    region_explicit: bool,
    endpoint_url: str | None = None,
    bucket_region: str | None = None,
    mode: Mode = "warn",
    env: Mapping[str, str] | None = None,
) -> PreflightResult:
    """Run the check; raise RegionMismatch in ``fail`` mode when data would cross regions."""
    if mode == "off":
        return PreflightResult(None, None, None, s3_region, bucket_region, "skipped", "EC2 region check is off")
    if endpoint_url:
        return PreflightResult(
            None, None, None, s3_region, None, "skipped", f"custom endpoint {endpoint_url}: not AWS S3, check skipped"
        )
    outcome = evaluate(detect_ec2(env), s3_region, region_explicit=region_explicit, bucket_region=bucket_region)
    if mode == "fail" and outcome.is_mismatch:
        raise RegionMismatch(
            f"EC2 region check failed: {outcome.message}. Fix region_name on the connection, run the task in "
            "the bucket's region, or set ec2_region_check='warn'."
        )
    return outcome
