"""Reference cache: content-addressed by SHA-256, encrypted at rest, validated at use.

Entries are stored as a sequence of Fernet tokens (one per 4 MiB chunk, each length-prefixed), so a
multi-GB reference never has to fit in memory. ``fetch`` decrypts into a caller-owned plaintext file and
checks its SHA-256; a tampered or corrupt entry is deleted and reported as a miss, never used.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import hashlib
import os
import re
import shutil
import struct
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO, Protocol

from cryptography.fernet import Fernet, InvalidToken

from .errors import DeltaGliderError
from .scratch import private_dir

PLAIN_CHUNK = 4 << 20
_LEN = struct.Struct(">I")
_SHA_RE = re.compile(r"^[0-9a-f]{64}$")


class ReferenceCache(Protocol):
    """Where decoded references are kept between operations."""

    def fetch(self, sha256: str, dest: Path) -> bool:
        """Write the plaintext of entry ``sha256`` to ``dest``; False (and no entry) if absent or invalid."""
        ...

    def store(self, sha256: str, source: Path) -> None:
        """Add ``source`` (whose SHA-256 the caller has verified) under ``sha256``."""
        ...

    def evict(self, sha256: str) -> None: ...

    def clear(self) -> None: ...

    def close(self) -> None:
        """Release what the cache holds (a temporary directory it made; memory)."""
        ...


def _check_sha(sha256: str) -> str:
    if not _SHA_RE.match(sha256):
        raise DeltaGliderError(f"Invalid cache key {sha256!r}: expected a lowercase hex SHA-256.")
    return sha256


def _encrypt_chunks(fernet: Fernet, source: Path) -> Iterator[bytes]:
    with open(source, "rb") as handle:
        while chunk := handle.read(PLAIN_CHUNK):
            token = fernet.encrypt(chunk)
            yield _LEN.pack(len(token)) + token


def _decrypt_into(fernet: Fernet, tokens: Iterable[bytes], dest: Path, sha256: str) -> bool:
    """Decrypt ``tokens`` into ``dest``; True only if every token is authentic and the hash matches."""
    digest = hashlib.sha256()
    try:
        with open(dest, "wb") as out:
            for token in tokens:
                plain = fernet.decrypt(token)
                digest.update(plain)
                out.write(plain)
    except InvalidToken:
        return False
    return digest.hexdigest() == sha256


def _read_tokens(handle: BinaryIO) -> Iterator[bytes]:
    while header := handle.read(_LEN.size):
        if len(header) != _LEN.size:
            raise InvalidToken
        (length,) = _LEN.unpack(header)
        token = handle.read(length)
        if len(token) != length:
            raise InvalidToken
        yield token


def make_fernet(key: str | bytes | None) -> Fernet:
    """A Fernet from a shared key (``DG_CACHE_ENCRYPTION_KEY``) or a fresh per-process key."""
    if key is None:
        return Fernet(Fernet.generate_key())
    try:
        return Fernet(key)
    except (ValueError, TypeError) as exc:
        raise DeltaGliderError(
            "Invalid cache encryption key (DG_CACHE_ENCRYPTION_KEY): expected 32 url-safe base64-encoded "
            "bytes, e.g. from 'python -c \"from cryptography.fernet import Fernet; "
            "print(Fernet.generate_key().decode())\"'."
        ) from exc


class FilesystemCache:
    """Encrypted entries in a private (0700) directory, removed at process exit when temporary.

    The directory holds at most ``max_bytes`` of entries: storing one evicts the least recently used (by
    mtime, which ``fetch`` refreshes) until the rest fits; an entry larger than the bound is not kept. The
    bound holds for a directory shared by several processes too (each evicts after its own store).
    """

    def __init__(
        self,
        directory: Path | None = None,
        *,
        encryption_key: str | bytes | None = None,
        max_bytes: int = 4096 << 20,
    ) -> None:
        self._fernet = make_fernet(encryption_key)
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._cleanup: functools.partial[None] | None = None
        if directory is None:
            self.directory = private_dir("cache")
            self._cleanup = functools.partial(shutil.rmtree, self.directory, True)
            atexit.register(self._cleanup)  # in case close() is never called
        else:
            self.directory = Path(directory)
            self.directory.mkdir(parents=True, exist_ok=True)
        os.chmod(self.directory, 0o700)

    def close(self) -> None:
        """Remove the cache directory if this cache created it (a caller-given directory is kept)."""
        cleanup, self._cleanup = self._cleanup, None
        if cleanup is not None:
            atexit.unregister(cleanup)
            cleanup()

    def _path(self, sha256: str) -> Path:
        return self.directory / f"{_check_sha(sha256)}.fernet"

    def fetch(self, sha256: str, dest: Path) -> bool:
        path = self._path(sha256)
        try:
            handle = open(path, "rb")  # noqa: SIM115 - closed below on every path
        except FileNotFoundError:
            return False
        with handle:
            try:
                valid = _decrypt_into(self._fernet, _read_tokens(handle), dest, sha256)
            except InvalidToken:
                valid = False
        if not valid:
            self.evict(sha256)
        else:
            with contextlib.suppress(OSError):  # evicted meanwhile by another process: the read still stands
                os.utime(path)  # most recently used
        return valid

    def store(self, sha256: str, source: Path) -> None:
        final = self._path(sha256)
        if source.stat().st_size > self.max_bytes // 4:  # a large reference stays only in the store's work
            return  # directory (decrypted, in use): no second full-size copy on the temp disk
        fd, tmp = tempfile.mkstemp(dir=self.directory, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as out:
                for record in _encrypt_chunks(self._fernet, source):
                    out.write(record)
            os.replace(tmp, final)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        self._trim(keep=final)

    def used_bytes(self) -> int:
        return sum(size for _, size, _ in self._entries())

    def _entries(self) -> list[tuple[float, int, Path]]:
        found = []
        for entry in self.directory.glob("*.fernet"):
            with contextlib.suppress(FileNotFoundError):
                stat = entry.stat()
                found.append((stat.st_mtime, stat.st_size, entry))
        return found

    def _trim(self, keep: Path) -> None:
        """Evict least recently used entries (never ``keep``, the one just stored) until within the bound."""
        with self._lock:
            entries = sorted(self._entries())
            total = sum(size for _, size, _ in entries)
            for _, size, entry in entries:
                if total <= self.max_bytes:
                    break
                if entry != keep:
                    entry.unlink(missing_ok=True)
                    total -= size

    def evict(self, sha256: str) -> None:
        self._path(sha256).unlink(missing_ok=True)

    def clear(self) -> None:
        with self._lock:
            for entry in self.directory.glob("*.fernet"):
                entry.unlink(missing_ok=True)


class MemoryCache:
    """Encrypted entries in process memory, least recently used evicted beyond ``max_bytes``."""

    def __init__(self, max_bytes: int = 100 << 20, *, encryption_key: str | bytes | None = None) -> None:
        self._fernet = make_fernet(encryption_key)
        self.max_bytes = max_bytes
        self._entries: OrderedDict[str, list[bytes]] = OrderedDict()
        self._sizes: dict[str, int] = {}
        self._lock = threading.Lock()

    @property
    def used_bytes(self) -> int:
        with self._lock:
            return sum(self._sizes.values())

    def fetch(self, sha256: str, dest: Path) -> bool:
        with self._lock:
            tokens = self._entries.get(_check_sha(sha256))
            if tokens is not None:
                self._entries.move_to_end(sha256)
        if tokens is None:
            return False
        if not _decrypt_into(self._fernet, tokens, dest, sha256):
            self.evict(sha256)
            return False
        return True

    def store(self, sha256: str, source: Path) -> None:
        size = source.stat().st_size
        if size > self.max_bytes:
            return
        tokens = [record[_LEN.size :] for record in _encrypt_chunks(self._fernet, source)]
        with self._lock:
            self._entries[_check_sha(sha256)] = tokens
            self._sizes[sha256] = sum(len(t) for t in tokens)
            while sum(self._sizes.values()) > self.max_bytes and len(self._entries) > 1:
                oldest, _ = self._entries.popitem(last=False)
                del self._sizes[oldest]

    def evict(self, sha256: str) -> None:
        with self._lock:
            self._entries.pop(sha256, None)
            self._sizes.pop(sha256, None)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._sizes.clear()

    def close(self) -> None:
        self.clear()


def make_cache(
    backend: str = "filesystem",
    *,
    memory_size_mb: int = 100,
    disk_size_mb: int = 4096,
    encryption_key: str | bytes | None = None,
    directory: Path | None = None,
) -> ReferenceCache:
    """Build a cache backend by name (``filesystem`` or ``memory``)."""
    if backend == "filesystem":
        return FilesystemCache(directory, encryption_key=encryption_key, max_bytes=disk_size_mb << 20)
    if backend == "memory":
        return MemoryCache(memory_size_mb << 20, encryption_key=encryption_key)
    raise DeltaGliderError(f"Unknown cache backend {backend!r} (DG_CACHE_BACKEND): use 'filesystem' or 'memory'.")
