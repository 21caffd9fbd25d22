"""Peak memory of one store's put/put/get of a large artifact, in a process of its own.

    python -m devtools.memprobe --size-mb 1024 --budget-mb 256 --bucket B --workdir DIR

Connects with ``AWS_ENDPOINT_URL`` / ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` from the environment
(a loopback SeaweedFS in the tests and benchmarks). Writes two versions of a ``size``-MB artifact of varied
content (random bytes, 16 changed places in the second) in 16 MiB pieces, then notes the process's RSS (the
interpreter and libraries: the baseline) and restarts the peak count from there, uploads version 1 (the
reference), uploads version 2 (a delta), downloads version 2 and checks it, and prints one JSON line:
baseline and peak RSS (VmHWM), the kind of each upload, stored bytes, seconds per step, and whether the
download was byte-identical.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import resource
import time
from pathlib import Path

from deltaglider_core import StoreConfig

PIECE = 16 << 20


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _rss_kb() -> int:
    return _status_kb("VmRSS")


def _peak_kb() -> int:
    """The process's peak RSS since the last :func:`_reset_peak` (Linux VmHWM)."""
    return _status_kb("VmHWM") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _reset_peak() -> None:
    """Restart the peak from the current RSS (Linux: writing 5 to /proc/self/clear_refs resets VmHWM), so
    the peak is the store's, not the artifact generation's before it."""
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")


def write_versions(workdir: Path, size: int, seed: int = 7) -> tuple[Path, Path]:
    rng = random.Random(seed)
    v1, v2 = workdir / "artifact-1.0.0.tar", workdir / "artifact-1.0.1.tar"
    changes = {rng.randrange(max(size // PIECE, 1)) for _ in range(16)}
    with open(v1, "wb") as a, open(v2, "wb") as b:
        for index, offset in enumerate(range(0, size, PIECE)):
            piece = rng.randbytes(min(PIECE, size - offset))
            a.write(piece)
            if index in changes:
                at = rng.randrange(max(len(piece) - 4096, 1))
                piece = piece[:at] + rng.randbytes(4096) + piece[at + 4096 :]
            b.write(piece)
    return v1, v2


def _sha(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mb", type=int, required=True)
    parser.add_argument("--budget-mb", type=int, default=None, help="default: the store's own default")
    parser.add_argument("--bucket", required=True)
    parser.add_argument("--workdir", type=Path, required=True)
    args = parser.parse_args(argv)
    os.environ.setdefault("DG_DISABLE_EC2_DETECTION", "1")
    import boto3
    from deltaglider_core import DeltaStore

    v1, v2 = write_versions(args.workdir, args.size_mb << 20)
    client = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"], region_name="us-east-1")
    report: dict[str, object] = {"size_mb": args.size_mb, "budget_mb": args.budget_mb}
    with DeltaStore(client, StoreConfig.from_env(memory_budget_mb=args.budget_mb)) as store:
        report["budget_bytes"] = store.memory_budget
        report["window_bytes"] = store.window
        report["baseline_kb"] = _rss_kb()
        _reset_peak()
        steps: dict[str, float] = {}
        started = time.monotonic()
        first = store.put(v1, args.bucket, f"big/{v1.name}")
        steps["put_reference_s"] = time.monotonic() - started
        report["after_reference_peak_kb"] = _peak_kb()
        started = time.monotonic()
        second = store.put(v2, args.bucket, f"big/{v2.name}")
        steps["put_delta_s"] = time.monotonic() - started
        report["after_puts_peak_kb"] = _peak_kb()
        out = args.workdir / "download.bin"
        started = time.monotonic()
        got = store.get(args.bucket, f"big/{v2.name}", out)
        steps["get_s"] = time.monotonic() - started
        report.update(
            kinds=[first.kind, second.kind],
            stored=[first.stored_size, second.stored_size],
            identical=got.sha256 == _sha(v2) == _sha(out),
            **{k: round(v, 2) for k, v in steps.items()},
        )
    report["peak_kb"] = _peak_kb()
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
