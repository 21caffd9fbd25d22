"""VCDIFF encode/decode behind one small protocol.

The default codec runs xdelta3's own command-line entry point (``xd3_main_cmdline``) from the C library
bundled in the ``pyxdelta`` wheel, so it installs with pip alone and accepts every xdelta3 option.
A system ``xdelta3`` binary is the fallback when the wheel is missing. The output is plain VCDIFF that
stock xdelta3 3.0.x decodes byte-identically.

Reading what other xdelta3 builds wrote: deltas whose sections carry LZMA secondary compression (the
default of Debian's and Ubuntu's xdelta3, so of DeltaGlider's own image) are rewritten without it by
:mod:`deltaglider_core.codec.vcdiff` before the library decodes them, and so are those of xdelta3's own DJW and
FGK coders (decoded in pure Python).

Settings that keep bytes exact and matches found:
- external (de)compression of gzip/xz inputs is off (the wheel is built without it; the CLI gets ``-D``);
- the source window (``-B``) covers the whole reference, so artifacts over 64 MiB still find matches,
  unless the store's memory budget allows less (see :mod:`deltaglider_core.codec.budget`);
- secondary compression is off (``-S none``): deltas of archives are already dense, and it costs time.
"""

from __future__ import annotations

import ctypes
import importlib.util
import shutil
import subprocess
import threading
from pathlib import Path
from typing import Protocol

from deltaglider_core.codec.budget import DEFAULT_BUDGET, full_window
from deltaglider_core.codec.vcdiff import UnsupportedSecondary, secondary_compressor, shape, strip_secondary
from deltaglider_core.errors import CodecError


class OutputTooLarge(CodecError):
    """A delta declares more output than its caller allows (the read path's budget); nothing was written."""

    def __init__(self, declared: int, limit: int) -> None:
        super().__init__(f"the delta declares {declared} bytes of output, more than the {limit} allowed")
        self.declared = declared
        self.limit = limit


class Codec(Protocol):
    """What the store needs from a delta codec."""

    name: str

    def encode(self, source: Path, target: Path, out: Path, window: int | None = None, *, quick: bool = False) -> str:
        """Write the VCDIFF delta of ``target`` against ``source`` to ``out``; return the options used.
        ``window``: the source window in bytes (None: one that covers the whole source). ``quick``: the fastest
        compression level, for estimates (a probe) rather than for storing."""
        ...

    def decode(
        self, source: Path, delta: Path, out: Path, window: int | None = None, *, limit: int | None = None
    ) -> None:
        """Rebuild the target from ``source`` and ``delta`` into ``out`` (``window`` as for encode). ``limit``:
        the most bytes the target may have; a delta that declares more raises :class:`OutputTooLarge` before
        anything is written."""
        ...


class _Runner(Protocol):
    name: str
    extra_flags: tuple[str, ...]

    def run(self, args: list[str]) -> tuple[int, str]: ...


class LibraryRunner:
    """Calls ``xd3_main_cmdline`` in the pyxdelta wheel's shared library.

    xdelta3's command-line code keeps its options in process-wide globals, so calls are serialised.
    """

    name = "pyxdelta"
    extra_flags: tuple[str, ...] = ()
    library = True  # built without secondary compression: decodes get it removed first (vcdiff.py)
    _lock = threading.Lock()

    def __init__(self, library_path: str) -> None:
        lib = ctypes.CDLL(library_path)
        self._main = lib.xd3_main_cmdline
        self._main.argtypes = [ctypes.c_int, ctypes.POINTER(ctypes.c_char_p)]
        self._main.restype = ctypes.c_int

    def _call(self, args: list[str]) -> tuple[int, str]:
        encoded = [b"xdelta3", *(a.encode() for a in args)]
        argv = (ctypes.c_char_p * (len(encoded) + 1))(*encoded, None)
        return int(self._main(len(encoded), argv)), ""

    def run(self, args: list[str]) -> tuple[int, str]:
        with self._lock:
            return self._call(args)

    def try_run(self, args: list[str]) -> tuple[int, str] | None:
        """Run now if no other call is running in this process, else None (the caller goes elsewhere)."""
        if not self._lock.acquire(blocking=False):
            return None
        try:
            return self._call(args)
        finally:
            self._lock.release()


class CliRunner:
    """Runs a system ``xdelta3`` binary."""

    name = "xdelta3-cli"
    extra_flags: tuple[str, ...] = ("-D", "-R")

    def __init__(self, binary: str) -> None:
        self.binary = binary

    def run(self, args: list[str]) -> tuple[int, str]:
        proc = subprocess.run([self.binary, *args], capture_output=True, text=True, check=False)
        return proc.returncode, proc.stderr.strip()


class XDelta3Codec:
    """xdelta3 VCDIFF codec with byte-exact settings."""

    def __init__(self, runner: _Runner, level: int = 9) -> None:
        self._runner = runner
        self.level = level
        self.name = f"xdelta3/{runner.name}"

    @property
    def runner(self) -> _Runner:
        """What runs the codec calls (the in-process library, a pool of worker processes, or a binary)."""
        return self._runner

    def _flags(self, runner: _Runner, source: Path, window: int | None) -> list[str]:
        """xdelta3 options: no secondary compression, and ``window`` (capped by what covers the source)."""
        whole = full_window(source.stat().st_size)  # the -B that covers the whole reference
        chosen = whole if window is None else min(window, whole)
        return [*runner.extra_flags, "-S", "none", "-B", str(chosen)]

    def encode(self, source: Path, target: Path, out: Path, window: int | None = None, *, quick: bool = False) -> str:
        flags = [f"-{1 if quick else self.level}", *self._flags(self._runner, source, window)]
        code, err = self._runner.run(["-e", "-f", *flags, "-s", str(source), str(target), str(out)])
        if code != 0:
            raise CodecError(
                f"xdelta3 encode of {target} against {source} failed (exit {code}) {err}".rstrip()
                + ". Check free space in the temp directory."
            )
        return " ".join(["xdelta3", "-e", *flags])

    def decode(
        self, source: Path, delta: Path, out: Path, window: int | None = None, *, limit: int | None = None
    ) -> None:
        if limit is not None:  # the decoder holds every window to its declared length: the sum is the output
            declared = shape(delta).target_size
            if declared > limit:
                raise OutputTooLarge(declared, limit)
        secondary = secondary_compressor(delta) if getattr(self._runner, "library", False) else None
        if secondary is None:
            self._decode(self._runner, source, delta, out, window)
            return
        plain = delta.with_name(delta.name + ".plain")
        try:
            try:
                strip_secondary(delta, plain)
            except UnsupportedSecondary:
                binary = shutil.which("xdelta3")
                if binary is None:
                    raise
                self._decode(CliRunner(binary), source, delta, out, window)  # a stock xdelta3 may read it
                return
            self._decode(self._runner, source, plain, out, window)
        finally:
            plain.unlink(missing_ok=True)

    def close(self) -> None:
        """Stop the runner's worker processes, if it has any."""
        close = getattr(self._runner, "close", None)
        if close is not None:
            close()

    def _decode(self, runner: _Runner, source: Path, delta: Path, out: Path, window: int | None) -> None:
        flags = self._flags(runner, source, window)
        code, err = runner.run(["-d", "-f", *flags, "-s", str(source), str(delta), str(out)])
        if code != 0:
            raise CodecError(
                f"xdelta3 decode of {delta} against {source} failed (exit {code}) {err}".rstrip()
                + ". The delta or its reference is corrupt or they do not belong together."
            )


def default_codec(level: int = 9, *, workers: int = 1, budget: int = DEFAULT_BUDGET) -> XDelta3Codec:
    """The pyxdelta library when installed (with ``workers`` > 1, concurrent calls in worker processes within
    ``budget`` bytes: :mod:`.codec_pool`), else a system ``xdelta3`` binary."""
    spec = importlib.util.find_spec("pyxdelta")
    if spec is not None and spec.origin:
        if workers > 1:
            from deltaglider_core.codec.pool import ProcessRunner

            return XDelta3Codec(ProcessRunner(spec.origin, workers, budget), level)
        return XDelta3Codec(LibraryRunner(spec.origin), level)
    binary = shutil.which("xdelta3")
    if binary:
        return XDelta3Codec(CliRunner(binary), level)
    raise CodecError("No VCDIFF codec found: run 'pip install pyxdelta' (or install the xdelta3 binary).")
