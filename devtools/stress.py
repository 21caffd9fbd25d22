"""Stress runs of the concurrency protocol against a real SeaweedFS on loopback (``make stress``; not timed,
not part of ``make test``). Each trial races real writers, deleters and prunes on threads in a fresh prefix
and then reads back every write that was acknowledged: a lost write is one acknowledged but not readable
byte-identically afterwards. Prints one table row per scenario.

    python -m devtools.stress [--trials 200]
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import os
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deltaglider_core import DeltaStore, StoreConfig
from deltaglider_core.errors import DeltaGliderError

from devtools.seaweed import SeaweedServer
from example_dags.fake_builds import make_build


@dataclass
class Tally:
    trials: int = 0
    acknowledged: int = 0
    refused: int = 0  # writes that failed loudly (not acknowledged): never a loss
    lost: int = 0


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _race(jobs: list[Callable[[], Any]]) -> list[Any]:
    """Run the jobs on threads released together; each result is the job's return value or its exception."""
    barrier = threading.Barrier(len(jobs))
    results: list[Any] = [None] * len(jobs)

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = jobs[i]()
        except DeltaGliderError as exc:
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def _outcome(result: Any, client: Any, bucket: str, key: str, original: Path, scratch: Path, tally: Tally) -> None:
    """Count a write that failed loudly as refused; read back one that was acknowledged."""
    if isinstance(result, DeltaGliderError):
        tally.refused += 1
    else:
        _check(client, bucket, key, original, scratch, tally)


def _check(client: Any, bucket: str, key: str, original: Path, scratch: Path, tally: Tally) -> None:
    tally.acknowledged += 1
    try:
        got = DeltaStore(client).get(bucket, key, scratch / "check")
        if got.sha256 != _sha(original):
            tally.lost += 1
    except DeltaGliderError:
        tally.lost += 1


def delete_vs_put(client: Any, bucket: str, trial: int, builds: list[Path], scratch: Path, tally: Tally) -> None:
    prefix = f"dvp{trial}"
    DeltaStore(client).put(builds[0], bucket, f"{prefix}/{builds[0].name}")
    for i in range(30):  # siblings widen the listing window, as in the report
        client.put_object(Bucket=bucket, Key=f"{prefix}/noise-{i:03d}.log", Body=b"x")
    results = _race([
        lambda: DeltaStore(client).delete(bucket, f"{prefix}/{builds[0].name}"),
        lambda: DeltaStore(client).put(builds[1], bucket, f"{prefix}/{builds[1].name}"),
    ])  # fmt: skip
    _outcome(results[1], client, bucket, f"{prefix}/{builds[1].name}", builds[1], scratch, tally)


def prune_vs_put(client: Any, bucket: str, trial: int, builds: list[Path], scratch: Path, tally: Tally) -> None:
    prefix = f"pvp{trial}"
    seed = DeltaStore(client)
    seed.put(builds[0], bucket, f"{prefix}/{builds[0].name}")
    seed.delete(bucket, f"{prefix}/{builds[0].name}")  # the reference is a prune candidate now
    results = _race([
        lambda: DeltaStore(client).prune(bucket, prefix, grace=dt.timedelta(0)),
        lambda: DeltaStore(client).put(builds[1], bucket, f"{prefix}/{builds[1].name}"),
    ])  # fmt: skip
    DeltaStore(client).prune(bucket, prefix, grace=dt.timedelta(0))  # the second phase, a "grace period" later
    _outcome(results[1], client, bucket, f"{prefix}/{builds[1].name}", builds[1], scratch, tally)


def prune_vs_put_and_reput(
    client: Any, bucket: str, trial: int, builds: list[Path], scratch: Path, tally: Tally
) -> None:
    """Prune's first phase races two writers; its second phase races a re-put into the prefix (which must not
    create new bytes at a reference key whose trash entry deltas still need: #28, finding 1); a last prune
    finishes. Every acknowledged write must still read back byte-identically."""
    prefix = f"prp{trial}"
    seed = DeltaStore(client)
    seed.put(builds[0], bucket, f"{prefix}/{builds[0].name}")
    seed.delete(bucket, f"{prefix}/{builds[0].name}")
    written: list[tuple[Any, Path]] = []
    first = _race([
        lambda: DeltaStore(client).prune(bucket, prefix, grace=dt.timedelta(0)),
        lambda: DeltaStore(client).put(builds[1], bucket, f"{prefix}/{builds[1].name}"),
        lambda: DeltaStore(client).put(builds[2], bucket, f"{prefix}/{builds[2].name}"),
    ])  # fmt: skip
    written += [(first[1], builds[1]), (first[2], builds[2])]
    second = _race([
        lambda: DeltaStore(client).prune(bucket, prefix, grace=dt.timedelta(0)),
        lambda: DeltaStore(client).put(builds[3], bucket, f"{prefix}/{builds[3].name}"),
        lambda: DeltaStore(client).put(builds[1], bucket, f"{prefix}/{builds[1].name}"),  # the same key again
    ])  # fmt: skip
    written += [(second[1], builds[3]), (second[2], builds[1])]
    DeltaStore(client).prune(bucket, prefix, grace=dt.timedelta(0))
    for result, original in written:
        _outcome(result, client, bucket, f"{prefix}/{original.name}", original, scratch, tally)


def same_key(client: Any, bucket: str, trial: int, builds: list[Path], scratch: Path, tally: Tally) -> None:
    """A retry overlapping its zombie attempt with another max_ratio: one stores a delta, the other another build
    directly. Both overlap, so either may take effect last; the key must read back as one of them."""
    prefix = f"sk{trial}"
    DeltaStore(client).put(builds[0], bucket, f"{prefix}/{builds[0].name}")
    key = f"{prefix}/app.zip"
    if trial % 2:  # half the trials start from a whole copy, half from a delta, of an older build
        DeltaStore(client, StoreConfig.from_env(max_ratio=0.0001)).put(builds[3], bucket, key)
    else:
        DeltaStore(client).put(builds[3], bucket, key)
    results = _race([
        lambda: DeltaStore(client).put(builds[1], bucket, key),
        lambda: DeltaStore(client, StoreConfig.from_env(max_ratio=0.0001)).put(builds[2], bucket, key),
    ])  # fmt: skip
    if all(isinstance(r, DeltaGliderError) for r in results):
        tally.refused += 1
        return
    tally.acknowledged += 1
    try:
        acknowledged = {_sha(builds[i]) for i, r in ((1, results[0]), (2, results[1])) if not isinstance(r, Exception)}
        got = DeltaStore(client).get(bucket, key, scratch / "check")
        if got.sha256 not in acknowledged:
            tally.lost += 1
    except DeltaGliderError:
        tally.lost += 1


def first_writers(
    client: Any, bucket: str, trial: int, builds: list[Path], scratch: Path, tally: Tally, *, ignored: bool
) -> None:
    prefix = f"fw{'i' if ignored else 'h'}{trial}"

    def writer(path: Path) -> Callable[[], Any]:
        def put() -> Any:
            target = client
            if ignored:  # a server that ignores If-None-Match: the header never reaches it
                from tests.interleave import Intercept

                target = Intercept(client)
                target.before("put_object", lambda p: p.pop("IfNoneMatch", None), times=None)
            return DeltaStore(target).put(path, bucket, f"{prefix}/{path.name}")

        return put

    results = _race([writer(p) for p in builds[:8]])
    for path, result in zip(builds[:8], results, strict=True):
        _outcome(result, client, bucket, f"{prefix}/{path.name}", path, scratch, tally)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--only", help="run only the scenarios whose name contains this text")
    args = parser.parse_args(argv)
    os.environ.setdefault("DG_DISABLE_EC2_DETECTION", "1")
    scenarios: dict[str, Callable[..., None]] = {
        "delete vs put": delete_vs_put,
        "prune vs put": prune_vs_put,
        "prune vs put and re-put (both phases)": prune_vs_put_and_reput,
        "same-key writers (delta vs direct)": same_key,
        "8 first writers, conditional writes honoured": lambda *a: first_writers(*a, ignored=False),
        "8 first writers, conditional writes ignored": lambda *a: first_writers(*a, ignored=True),
    }
    server = SeaweedServer()
    server.start()
    try:
        with tempfile.TemporaryDirectory(prefix="dg-stress-") as tmp:
            scratch = Path(tmp)
            builds = [make_build(scratch / "builds", v, size=60_000, members=8, churn=0.2) for v in range(8)]
            client = server.client()
            print("| scenario | trials | acknowledged writes | refused (not acknowledged) | lost | seconds |")
            print("|---|---|---|---|---|---|")
            failed = False
            for name, scenario in scenarios.items():
                if args.only and args.only not in name:
                    continue
                bucket = f"stress-{abs(hash(name)) % 10**8}"
                client.create_bucket(Bucket=bucket)
                tally = Tally()
                started = time.monotonic()
                for trial in range(args.trials):
                    tally.trials += 1
                    scenario(client, bucket, trial, builds, scratch, tally)
                seconds = time.monotonic() - started
                print(f"| {name} | {tally.trials} | {tally.acknowledged} | {tally.refused} | {tally.lost} | "
                      f"{seconds:.0f} |", flush=True)  # fmt: skip
                failed = failed or tally.lost > 0
    finally:
        server.stop()
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
