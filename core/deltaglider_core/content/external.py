"""Read the deltas stock xdelta3 writes for gzip, bzip2, xz and compress files (DeltaGlider's compressed archives).

DeltaGlider 6 runs a stock ``xdelta3 -e`` without ``-D``: when the reference or the new file starts with a
gzip/bzip2/xz/compress signature, xdelta3 decompresses it through the external program (``gzip -dc`` ...),
takes the delta of the *decompressed* bytes, and records this in the VCDIFF application header as
``target-name/T/source-name/S``, T and S being one letter per program (``G`` gzip, ``B`` bzip2, ``Y`` xz,
``Z`` compress; empty when that side was not compressed). Its decoder decompresses the reference the same
way, applies the delta, and recompresses the output with the program's defaults (``gzip -c`` ...).

This module does the same so that such objects read back here: the reference is decompressed with Python's
own ``gzip``/``bz2``/``lzma`` modules (decompression is exact whatever made the stream; ``compress`` needs the
``uncompress`` program), the delta is applied by the usual codec, and the output is recompressed by the same
program stock xdelta3 runs, with its default settings (the ``GZIP``/``BZIP2``/``XZ_OPT`` environment variables
that would change them are not passed on). No library reproduces GNU gzip's, bzip2's or xz's exact output, so
the program is required; its absence is a clear error naming it.

The recompressed bytes equal the original only when the original was made by that same program at its
defaults (``tar czf`` is; Python's ``gzip`` module, which writes sdists, is not). The SHA-256 check that ends
every read catches the rest, and the error says so: DeltaGlider itself cannot read those objects back.
Everything streams through files; nothing is held whole in memory.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import shutil
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from deltaglider_core.codec.vcdiff import application_header
from deltaglider_core.errors import CodecError, IntegrityError
from deltaglider_core.support.limits import Cap, Enough, ReadBudget, capped_open

CHUNK = 1 << 20
PROGRAMS = {"G": "gzip", "B": "bzip2", "Y": "xz", "Z": "compress"}  # xdelta3 3.0.x's identifiers
_SETTINGS_ENV = ("GZIP", "BZIP", "BZIP2", "XZ_OPT", "XZ_DEFAULTS")  # would change the programs' defaults
_PACKAGES = {"gzip": "gzip", "bzip2": "bzip2", "xz": "xz-utils", "compress": "ncompress", "uncompress": "ncompress"}


@dataclass(frozen=True)
class ExternalCompression:
    """Which sides of a delta stock xdelta3 decompressed: the program names (``gzip``...), or None."""

    source: str | None
    target: str | None

    def describe(self) -> str:
        sides = []
        if self.source:
            sides.append(f"the reference's {self.source} stream")
        if self.target:
            sides.append(f"the file's {self.target} stream")
        return " and ".join(sides)


def declared(delta: Path) -> ExternalCompression | None:
    """What the delta's application header declares, or None when neither side was externally compressed."""
    header = application_header(delta)
    if header is None:
        return None
    parts = header.split(b"/")
    if len(parts) == 4:
        target, source = parts[1], parts[3]
    elif len(parts) == 2:
        target, source = parts[1], b""
    else:
        return None
    found = ExternalCompression(_program(source), _program(target))
    return found if found.source or found.target else None


def _program(ident: bytes) -> str | None:
    return PROGRAMS.get(ident.decode("ascii", "replace")) if ident else None


def decompress(program: str, src: Path, out: Path, where: str, reach: int) -> None:
    """Decompress ``src`` (made by ``program``) into ``out``, as xdelta3's ``<program> -dc`` would, but only its
    first ``reach`` bytes: how far the delta reads into it (the rest is never used; a bomb stops there)."""
    cap = Cap(reach, IntegrityError(where), quiet=True)
    try:
        if program == "compress":
            _run(["uncompress", "-c"], src, out, where, cap)
            return
        with _reader(program, src) as stream, capped_open(out, cap) as sink:
            shutil.copyfileobj(stream, sink, CHUNK)
    except Enough:
        return
    except (OSError, EOFError, lzma.LZMAError) as exc:
        raise IntegrityError(
            f"{where}: stock xdelta3 recorded that it decompressed the reference with {program}, but the reference "
            f"does not decompress ({exc}): it was replaced or damaged. Nothing was written."
        ) from exc


def recompress(program: str, src: Path, out: Path, where: str, budget: ReadBudget) -> None:
    """Compress ``src`` into ``out`` with ``<program> -c`` at its defaults, as stock xdelta3's decoder does."""
    _run([program, "-c"], src, out, where, budget.cap(f"recompressing the file with {program}", budget.rebuilt))


def mismatch_message(external: ExternalCompression) -> str:
    """Why a rebuilt file can differ from the original, and what that means."""
    program = external.target or external.source
    return (
        f"the delta was taken by stock xdelta3 (DeltaGlider) between the decompressed contents ({external.describe()}) "
        f"and '{program} -c' at its default settings does not reproduce the original bytes: the file was not made by "
        f"{program} at its defaults (Python's gzip module, another level or tool), so DeltaGlider cannot read it back "
        "either. Its contents are intact: re-upload the original file to store it in a form that reads back exactly"
    )


def _run(command: list[str], src: Path, out: Path, where: str, cap: Cap | None) -> None:
    binary = shutil.which(command[0])
    if binary is None:
        raise CodecError(
            f"{where} was written by stock xdelta3 (DeltaGlider) as a delta of decompressed contents; reading it "
            f"needs the '{command[0]}' program, which is not on PATH here: "
            f"install it on the worker (Debian/Ubuntu: apt-get install {_PACKAGES[command[0]]}) and retry. "
            "Nothing was written."
        )
    env = {k: v for k, v in os.environ.items() if k not in _SETTINGS_ENV}
    # Fed through a pipe as xdelta3 feeds it (given a regular file as stdin, gzip would record its mtime), by a
    # thread of this call's own; the output is read back through the cap, and the program killed past it.
    with open(src, "rb") as source, tempfile.TemporaryFile() as stderr:
        proc = subprocess.Popen(
            [binary, *command[1:]], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, env=env
        )
        assert proc.stdin is not None and proc.stdout is not None
        feeder = threading.Thread(target=_feed, args=(source, proc.stdin), name="dg-external-feed", daemon=True)
        feeder.start()
        try:
            with proc.stdout, capped_open(out, cap) as sink:
                shutil.copyfileobj(proc.stdout, sink, CHUNK)
        except BaseException:
            proc.kill()  # the cap was passed (or the read failed): stop the program, which ends the feeder
            raise
        finally:
            code = proc.wait()
            feeder.join()
        stderr.seek(0)
        err = stderr.read().decode(errors="replace").strip()
    if code != 0:
        raise CodecError(f"{where}: '{' '.join(command)}' failed (exit {code}): {err}. Nothing was written.")


def _feed(source: BinaryIO, stdin: BinaryIO) -> None:
    try:
        with stdin:
            shutil.copyfileobj(source, stdin, CHUNK)
    except (BrokenPipeError, ValueError):
        pass  # the program stopped reading (or was stopped): its exit status and message say why


def _reader(program: str, src: Path) -> io.BufferedIOBase:
    if program == "gzip":
        return gzip.GzipFile(src, "rb")
    if program == "bzip2":
        return bz2.BZ2File(src, "rb")
    return lzma.LZMAFile(src, "rb")
