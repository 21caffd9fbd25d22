"""``make fuzz``: hostile bucket objects read through a real store, for ``FUZZ_SECONDS`` (default 300).

Hypothesis builds objects an attacker with write access to a bucket could plant: ``dg-*`` metadata (sizes that
are not numbers, RFC 2047 words, references that are missing, foreign or trashed), VCDIFF headers and windows
(any indicator, sizes up to 2^40, secondary sections with LZMA/DJW/FGK ids), zip-stream plans and gzip
recipes, and mutations (flips, cuts, splices) of real deltas: our byte-level and content deltas and the ones
DeltaGlider 6.2.0 wrote (tests/fixtures). Each is read with ``DeltaStore.get`` on moto. The contract:

- the outcome is a verified file or a typed ``DeltaGliderError`` (anything else is a finding);
- nothing is left in the destination directory after an error;
- no stage writes past its budget: the process runs under ``RLIMIT_FSIZE`` (48 MiB), far above every
  budget these small objects allow and far below what an unbounded stage writes, so such a write fails with
  ``EFBIG``, which is not a ``DeltaGliderError``, and is reported.

Prints the number of cases, the outcomes by kind, the peak RSS, and every finding; exits 1 on any.
"""

from __future__ import annotations

import collections
import gzip
import json
import lzma
import os
import resource
import signal
import sys
import tempfile
import time
import traceback
import zlib
from pathlib import Path
from typing import Any

FILE_LIMIT = 48 << 20
ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "deltaglider-6.2.0"
FINDINGS = Path(os.environ.get("FUZZ_FINDINGS", Path(tempfile.gettempdir()) / "dg-fuzz-findings"))


class Bench:
    """The bucket the fuzzer reads from: real references and deltas to start mutations from."""

    def __init__(self, client: Any, bucket: str, work: Path) -> None:
        from deltaglider_core import DeltaStore

        from example_dags.fake_builds import make_build

        self.client, self.bucket = client, bucket
        store = DeltaStore(client)
        builds = [make_build(work, v, size=12_000, members=6, churn=0.3) for v in range(3)]
        for build in builds:
            store.put(build, bucket, f"z/{build.name}")
        tgz = [work / f"pkg-{v}.tgz" for v in range(2)]
        for v, path in enumerate(tgz):
            path.write_bytes(gzip.compress(b"".join(b"line %d of %d\n" % (i, v) for i in range(900)), mtime=0))
            store.put(path, bucket, f"g/{path.name}")
        store.close()
        self.seeds: list[tuple[bytes, dict[str, str]]] = []
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for obj in page.get("Contents", []):
                if obj["Key"].endswith(".delta"):
                    body = client.get_object(Bucket=bucket, Key=obj["Key"])
                    self.seeds.append((body["Body"].read(), body["Metadata"]))
        manifest = json.loads((FIXTURES / "manifest.json").read_text())
        for key, obj in manifest["objects"].items():
            body = (FIXTURES / "objects" / obj["file"]).read_bytes()
            client.put_object(Bucket=bucket, Key=f"dg/{key}", Body=body, Metadata=obj["metadata"])
            if key.endswith(".delta"):
                meta = dict(obj["metadata"])
                meta["dg-ref-key"] = "dg/" + meta["dg-ref-key"]
                self.seeds.append((body, meta))
        self.refs = ["z/reference.bin", "g/reference.bin", "dg/releases/app/reference.bin"]


def strategies(bench: Bench) -> Any:
    from deltaglider_core.codec.vcdiff import varint_bytes as _varint  # RFC 3284 integers, written
    from hypothesis import strategies as st

    sizes = st.one_of(
        st.integers(0, 20_000).map(str),
        st.sampled_from(["", "-1", "1e3", " 5", "²", "=?UTF-8?B?wrI=?=", "0x10", str(1 << 70), "٣"]),
        st.text(max_size=12),
    )
    shas = st.one_of(st.sampled_from(["", "0" * 64]), st.text("0123456789abcdef", min_size=64, max_size=64))
    recipe = st.one_of(
        st.fixed_dictionaries(
            {"h": st.sampled_from(["H4sIAAAAAAAAAw==", "!!", ""]), "l": st.integers(-2, 12),
             "m": st.integers(-1, 10), "s": st.integers(-1, 6), "z": st.text(max_size=8)}
        ).map(json.dumps),
        st.text(max_size=40),
    )  # fmt: skip
    field_values = {
        "file-size": sizes,
        "content-size": sizes,
        "file-sha256": shas,
        "ref-sha256": shas,
        "ref-key": st.one_of(st.sampled_from([*bench.refs, "z/missing.bin", "../x", "z/", ""]), st.text(max_size=20)),
        "content-encoding": st.sampled_from(["zip", "gzip", "brotli", ""]),
        "zip-rebuild": st.sampled_from(['{"v":1}', '{"v":2}', "{}", "x"]),
        "gzip-rebuild": recipe,
        "delta-compression": st.sampled_from(["xz", "zstd", ""]),
    }

    @st.composite
    def metadata(draw: Any, base: dict[str, str]) -> dict[str, str]:
        meta = dict(base)
        for name, values in field_values.items():
            choice = draw(st.integers(0, 5))
            if choice == 0:
                meta.pop(f"dg-{name}", None)
            elif choice == 1:
                meta[f"dg-{name}"] = draw(values)
        return {k: v.encode("ascii", "replace").decode() if not v.isascii() else v for k, v in meta.items()}

    @st.composite
    def section(draw: Any, target: int) -> bytes:
        kind = draw(st.integers(0, 3))
        if kind == 0:
            return draw(st.binary(max_size=64))
        payload = draw(st.binary(max_size=200))
        if kind == 1:
            payload = lzma.compress(payload, format=lzma.FORMAT_XZ, check=lzma.CHECK_NONE)
        size = draw(st.one_of(st.just(len(payload)), st.integers(0, 1 << 30), st.just(target)))
        return _varint(size) + payload

    @st.composite
    def window(draw: Any) -> bytes:
        win = draw(st.sampled_from([0, 1, 2, 4, 5, 255]))
        head = bytes([win])
        if win & 3:
            head += _varint(draw(st.integers(0, 1 << 40))) + _varint(draw(st.integers(0, 1 << 40)))
        target = draw(st.one_of(st.integers(0, 4096), st.integers(0, 1 << 26), st.just(1 << 24)))
        indicator = draw(st.integers(0, 7))
        bodies = [draw(section(target)) for _ in range(3)]
        lengths = [len(b) if draw(st.booleans()) else draw(st.integers(0, 1 << 32)) for b in bodies]
        checksum = draw(st.binary(min_size=4, max_size=4)) if win & 4 else b""
        encoding = _varint(target) + bytes([indicator]) + b"".join(_varint(n) for n in lengths) + checksum
        encoding += b"".join(bodies)
        return head + _varint(draw(st.one_of(st.just(len(encoding)), st.integers(0, 1 << 20)))) + encoding

    @st.composite
    def vcdiff(draw: Any) -> bytes:
        indicator = draw(st.sampled_from([0, 1, 4, 5, 7]))
        out = b"\xd6\xc3\xc4\x00" + bytes([indicator])
        if indicator & 1:
            out += bytes([draw(st.sampled_from([1, 2, 16, 99]))])
        if indicator & 2:
            out += _varint(draw(st.integers(0, 300))) + draw(st.binary(max_size=40))
        if indicator & 4:
            header = draw(st.sampled_from([b"v2.bin//v1.gz/G", b"v2.gz/G/v1.gz/G", b"v2.xz/Y/v1.bin/", b"a/B/b/Z"]))
            out += _varint(len(header)) + header
        return out + b"".join(draw(st.lists(window(), max_size=3)))

    @st.composite
    def zip_stream_delta(draw: Any) -> bytes:
        plan = zlib.compress(json.dumps(draw(st.lists(st.tuples(st.text(max_size=8), st.integers(0, 4)),
                                                      max_size=4))).encode())  # fmt: skip
        return b"DGZIPD\x00\x01" + len(plan).to_bytes(4, "big") + plan + draw(vcdiff())

    @st.composite
    def mutated(draw: Any) -> bytes:
        body, _ = draw(st.sampled_from(bench.seeds))
        data = bytearray(body)
        for _ in range(draw(st.integers(1, 6))):
            op = draw(st.integers(0, 3))
            at = draw(st.integers(0, max(0, len(data) - 1)))
            if op == 0 and data:
                data[at] ^= 1 << draw(st.integers(0, 7))
            elif op == 1:
                del data[at:]
            elif op == 2:
                data[at:at] = draw(st.binary(max_size=16))
            else:
                data[at : at + 4] = _varint(draw(st.integers(0, 1 << 40)))
        return bytes(data)

    @st.composite
    def case(draw: Any) -> tuple[bytes, dict[str, str]]:
        body = draw(st.one_of(mutated(), vcdiff(), zip_stream_delta()))
        if draw(st.integers(0, 4)) == 0:
            body = lzma.compress(body, format=lzma.FORMAT_XZ)
        _, base = draw(st.sampled_from(bench.seeds))
        return body, draw(metadata(base))

    return case()


def main() -> int:
    import boto3
    from hypothesis import HealthCheck, given, settings
    from moto import mock_aws

    seconds = float(os.environ.get("FUZZ_SECONDS", "300"))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead of killing
    resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_LIMIT, FILE_LIMIT))
    os.environ["DG_FAST_TRANSPORT"] = "0"  # moto answers boto3 only
    outcomes: collections.Counter[str] = collections.Counter()
    findings: list[str] = []
    with tempfile.TemporaryDirectory(prefix="dg-fuzz-") as tmp, mock_aws():
        from deltaglider_core import DeltaGliderError, DeltaStore

        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="fuzz-bucket")
        work = Path(tmp)
        bench = Bench(client, "fuzz-bucket", work)
        store = DeltaStore(client)
        dest = work / "dest"
        dest.mkdir()

        @settings(max_examples=200, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        @given(strategies(bench))
        def read(planted: tuple[bytes, dict[str, str]]) -> None:
            body, meta = planted
            name = f"c{sum(outcomes.values())}"
            try:
                client.put_object(Bucket="fuzz-bucket", Key=f"z/{name}.zip.delta", Body=body, Metadata=meta)
            except Exception as exc:  # noqa: BLE001 - metadata S3 itself refuses: not a case
                outcomes[f"not stored: {type(exc).__name__}"] += 1
                return
            try:
                got = store.get("fuzz-bucket", f"z/{name}.zip", dest)
                outcomes["read, verified" if got.verified else "read, unverified"] += 1
                Path(got.path).unlink()
            except DeltaGliderError as exc:
                outcomes[type(exc).__name__] += 1
            except Exception as exc:  # noqa: BLE001 - the finding this tool looks for
                saved = FINDINGS / f"finding-{len(findings)}"
                saved.mkdir(parents=True, exist_ok=True)
                (saved / "body").write_bytes(body)
                (saved / "meta.json").write_text(json.dumps(meta))
                (saved / "traceback.txt").write_text(traceback.format_exc())
                where = traceback.extract_tb(exc.__traceback__)[-3:]
                findings.append(f"{type(exc).__name__}: {exc} at {[f'{f.filename}:{f.lineno}' for f in where]} "
                                f"<- meta={meta} body[:64]={body[:64]!r}")  # fmt: skip
                outcomes["FINDING"] += 1
            left = list(dest.iterdir())
            if left:
                findings.append(f"left in the destination: {[p.name for p in left]} <- meta={meta}")
                for path in left:
                    path.unlink()
            client.delete_object(Bucket="fuzz-bucket", Key=f"z/{name}.zip.delta")

        started = time.monotonic()
        while time.monotonic() - started < seconds and not findings:
            read()
        store.close()
    total = sum(outcomes.values())
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss >> 10
    print(f"fuzz: {total} cases in {time.monotonic() - started:.0f} s; peak RSS {peak} MB")
    for kind, count in outcomes.most_common():
        print(f"  {count:6d}  {kind}")
    for finding in findings[:20]:
        print("FINDING:", finding[:2000])
    print(f"fuzz: {len(findings)} finding(s)" + (f"; each case saved under {FINDINGS}" if findings else ""))
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
