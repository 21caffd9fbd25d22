"""Mutation check: break one behaviour at a time in a copy of the project and see whether the tests notice.

Each mutation in :mod:`devtools.mutations` replaces one exact snippet of one file (the snippet must occur
exactly once, so a mutation that no longer applies is reported, never silently skipped), runs the tests
named for that area in the copy, and restores the file. A mutation whose tests still pass is a survivor:
a behaviour the suite does not guard.

    python -m devtools.mutate            # every mutation, two copies in parallel
    python -m devtools.mutate --list     # names only
    python -m devtools.mutate NAME ...   # just these

Not part of ``make test`` (it runs the suite dozens of times); ``make mutate`` runs it. Exit status 1 when
anything survived or failed to apply. Copies live in one temp dir that is removed at the end.
"""

from __future__ import annotations

import argparse
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from devtools.mutations import MUTATIONS, Mutation

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT_S = 900


@dataclass(frozen=True)
class Outcome:
    mutation: Mutation
    verdict: str  # killed | survived | not-applied | timeout | error
    seconds: float
    detail: str = ""


def _tracked_files() -> list[str]:
    # tracked files and new ones git does not ignore: the working tree as the next commit would have it
    args = ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"]
    out = subprocess.run(args, cwd=ROOT, check=True, capture_output=True).stdout
    return [name for name in out.decode().split("\0") if name]


def make_copy(parent: Path, index: int) -> Path:
    """A copy of every tracked file (as in the working tree) under ``parent``."""
    copy = parent / f"copy-{index}"
    for name in _tracked_files():
        source = ROOT / name
        if not source.is_file():
            continue
        target = copy / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target, follow_symlinks=False)
    return copy


def _env(copy: Path) -> dict[str, str]:
    env = dict(os.environ)
    # The copy's packages come first: the venv's editable install points at the original tree.
    env["PYTHONPATH"] = os.pathsep.join([str(copy / "core"), str(copy)])
    env.pop("AIRFLOW_HOME", None)
    peer = ROOT / ".venv-peer" / "bin" / "python"  # the copy has no venvs: the peer stays the original's
    if peer.exists():
        env.setdefault("DG_PEER_PYTHON", str(peer))
    return env


def run_one(copy: Path, mutation: Mutation) -> Outcome:
    path = copy / mutation.path
    if not path.is_file():
        return Outcome(mutation, "not-applied", 0.0, f"no file {mutation.path}")
    original = path.read_text()
    count = original.count(mutation.old)
    if count != 1:
        return Outcome(mutation, "not-applied", 0.0, f"snippet found {count} times in {mutation.path}")
    path.write_text(original.replace(mutation.old, mutation.new))
    started = time.monotonic()
    try:
        args = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *mutation.tests]
        proc = subprocess.run(
            args, cwd=copy, env=_env(copy), capture_output=True, text=True, timeout=TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired:
        return Outcome(mutation, "timeout", time.monotonic() - started)
    finally:
        path.write_text(original)
    seconds = time.monotonic() - started
    lines = (proc.stdout.strip().splitlines() or [""])[-1]
    if proc.returncode == 0:
        return Outcome(mutation, "survived", seconds, lines)
    if proc.returncode == 1:
        failed = [ln for ln in proc.stdout.splitlines() if ln.startswith("FAILED")]
        return Outcome(mutation, "killed", seconds, failed[0] if failed else lines)
    if proc.returncode == 2:  # the mutated code no longer imports: the tests did notice
        return Outcome(mutation, "killed", seconds, f"collection error: {lines}")
    # 4: a named test file is missing, 5: nothing collected: the mutation was never really tested
    return Outcome(mutation, "error", seconds, f"pytest exit {proc.returncode}: {lines}")


def run_all(mutations: list[Mutation], workers: int) -> list[Outcome]:
    todo: queue.Queue[Mutation] = queue.Queue()
    for mutation in mutations:
        todo.put(mutation)
    outcomes: list[Outcome] = []
    lock = threading.Lock()
    with tempfile.TemporaryDirectory(prefix="dg-mutate-") as parent:

        def worker(index: int) -> None:
            copy = make_copy(Path(parent), index)
            while True:
                try:
                    mutation = todo.get_nowait()
                except queue.Empty:
                    return
                outcome = run_one(copy, mutation)
                with lock:
                    outcomes.append(outcome)
                    line = f"{outcome.verdict:>11}  {outcome.seconds:6.1f}s  {mutation.name}  {outcome.detail}"
                    print(line, flush=True)

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(workers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    order = {m.name: i for i, m in enumerate(mutations)}
    return sorted(outcomes, key=lambda o: order[o.mutation.name])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", help="run only these mutations")
    parser.add_argument("--list", action="store_true", help="list the mutations and exit")
    parser.add_argument("-j", "--workers", type=int, default=2, help="copies run in parallel (default 2)")
    args = parser.parse_args(argv)
    if args.list:
        for m in MUTATIONS:
            print(f"{m.name:40} {m.area:12} {m.path}")
        return 0
    unknown = set(args.names) - {m.name for m in MUTATIONS}
    if unknown:
        parser.error(f"unknown mutation(s): {', '.join(sorted(unknown))}")
    chosen = [m for m in MUTATIONS if not args.names or m.name in args.names]
    started = time.monotonic()
    outcomes = run_all(chosen, max(1, args.workers))
    bad = [o for o in outcomes if o.verdict in ("survived", "not-applied", "error")]
    killed = sum(o.verdict in ("killed", "timeout") for o in outcomes)
    print(f"\n{killed} of {len(outcomes)} mutations killed in {time.monotonic() - started:.0f} s; {len(bad)} not:")
    for o in bad:
        print(f"  {o.verdict}: {o.mutation.name} ({o.mutation.area}): {o.mutation.why}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
