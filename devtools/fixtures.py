"""Regenerate the committed interop fixtures with the real peers (tests read them with no binary installed).

    python -m devtools.fixtures      # needs a stock xdelta3 on PATH (Debian: apt-get install xdelta3)
                                     # and the DeltaGlider 6.2.0 peer venv (make venv)

- ``tests/fixtures/xdelta3/``: one source/target pair and its deltas as stock xdelta3 writes them with each
  secondary compressor (``-S lzma`` is Debian's default), several windows (``-W 16384``), without an
  application header (``-A``) and without window checksums (``-n``). ``manifest.json`` names each delta's
  command line, the xdelta3 version and the target's SHA-256.
- ``tests/fixtures/deltaglider-6.2.0/``: a prefix as DeltaGlider 6.2.0 (on that xdelta3) wrote it to S3,
  each object's body and user metadata, with the SHA-256 of every original file.
"""

from __future__ import annotations

import hashlib
import json
import random
import shutil
import subprocess
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
XD3_DIR = ROOT / "tests" / "fixtures" / "xdelta3"
DG_DIR = ROOT / "tests" / "fixtures" / "deltaglider-6.2.0"
VARIANTS = {
    "lzma.vcdiff": [],  # the default: Debian's xdelta3 uses -S lzma
    "lzma-windows.vcdiff": ["-W", "16384"],
    "lzma-noapphead.vcdiff": ["-A"],
    "lzma-nochecksum.vcdiff": ["-n"],
    "djw.vcdiff": ["-S", "djw"],
    "djw-windows.vcdiff": ["-S", "djw", "-W", "16384"],
    "djw9.vcdiff": ["-S", "djw9"],  # level 9: several Huffman tables and sector selectors (target-fresh.bin)
    "fgk.vcdiff": ["-S", "fgk"],
    "fgk-windows.vcdiff": ["-S", "fgk", "-W", "16384"],  # stock xdelta3 cannot decode this one itself
    "none.vcdiff": ["-S", "none"],
}


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _pair(rng: random.Random) -> tuple[bytes, bytes]:
    words = [bytes(rng.choice(b"abcdefghijklmnop") for _ in range(rng.randint(2, 9))) for _ in range(400)]
    source = b" ".join(rng.choice(words) for _ in range(12000))
    target = bytearray(source)
    for i in range(0, len(target), 9000):
        target[i : i + 7] = b"CHANGED"
    target += b" ".join(rng.choice(words) for _ in range(1500))
    return source, bytes(target)


def xdelta3_fixtures(binary: str) -> None:
    XD3_DIR.mkdir(parents=True, exist_ok=True)
    source, target = _pair(random.Random(3284))
    (XD3_DIR / "source.bin").write_bytes(source)
    (XD3_DIR / "target.bin").write_bytes(target)
    version = subprocess.run([binary, "-V"], capture_output=True, text=True, check=False)
    manifest = {
        "xdelta3": (version.stdout + version.stderr).strip().splitlines()[0],
        "target_sha256": _sha(XD3_DIR / "target.bin"),
        "deltas": {},
    }
    # Several KB of bytes the source does not have: a data section big enough for DJW's multi-table coding.
    rng_words = random.Random(1951)
    extra = b" ".join(bytes(rng_words.choice(b"qrstuvwxyz") for _ in range(5)) for _ in range(3000))
    (XD3_DIR / "target-fresh.bin").write_bytes(target + extra)
    manifest["fresh_target_sha256"] = _sha(XD3_DIR / "target-fresh.bin")
    for name, flags in VARIANTS.items():
        target_name = "target-fresh.bin" if name == "djw9.vcdiff" else "target.bin"
        args = ["-e", "-f", *flags, "-s", "source.bin", target_name, name]
        subprocess.run([binary, *args], cwd=XD3_DIR, check=True)
        manifest["deltas"][name] = {
            "command": " ".join(["xdelta3", *args]),
            "size": (XD3_DIR / name).stat().st_size,
            "target": target_name,
        }
    (XD3_DIR / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")


def deltaglider_fixtures() -> None:
    """DeltaGlider 6.2.0 uploads four versions and a text file to a throwaway SeaweedFS; dump what it wrote."""
    from devtools.peer import Peer
    from devtools.seaweed import SeaweedServer
    from example_dags.fake_builds import make_build

    server = SeaweedServer()
    server.start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            files = [make_build(tmp, v, size=40_000, members=8, churn=0.2) for v in range(4)]
            notes = Path(tmp) / "notes.txt"
            notes.write_text("release notes\n" * 20)
            client = server.client()
            client.create_bucket(Bucket="dgfixture")
            peer = Peer(server.endpoint_url, server.access_key, server.secret_key)
            peer.upload([*files, notes], "s3://dgfixture/releases/app/")
            if DG_DIR.exists():
                shutil.rmtree(DG_DIR)
            (DG_DIR / "objects").mkdir(parents=True)
            objects = {}
            for item in client.list_objects_v2(Bucket="dgfixture")["Contents"]:
                key = item["Key"]
                obj = client.get_object(Bucket="dgfixture", Key=key)
                stored = DG_DIR / "objects" / key.replace("/", "__")
                stored.write_bytes(obj["Body"].read())
                objects[key] = {"file": stored.name, "metadata": obj["Metadata"]}
            originals = {
                f"releases/app/{p.name}": {"sha256": _sha(p), "size": p.stat().st_size} for p in [*files, notes]
            }
    finally:
        server.stop()
    manifest = {"writer": "deltaglider 6.2.0 on stock xdelta3", "objects": objects, "originals": originals}
    (DG_DIR / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")


def main() -> None:
    from devtools.peer import stock_xdelta3

    binary = stock_xdelta3()
    xdelta3_fixtures(binary)
    deltaglider_fixtures()
    print(f"fixtures written to {XD3_DIR} and {DG_DIR}")


if __name__ == "__main__":
    main()
