from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from deltaglider_core import DeltaGliderError
from deltaglider_core.cache import FilesystemCache, MemoryCache, make_cache


def _file(tmp_path: Path, name: str, data: bytes) -> tuple[Path, str]:
    path = tmp_path / name
    path.write_bytes(data)
    return path, hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("backend", ["filesystem", "memory"])
def test_store_fetch_roundtrip_multi_chunk(tmp_path: Path, backend: str) -> None:
    cache = make_cache(backend, memory_size_mb=64)
    data = os.urandom((9 << 20) + 123)  # three 4 MiB chunks
    src, sha = _file(tmp_path, "ref", data)
    assert cache.fetch(sha, tmp_path / "miss") is False
    cache.store(sha, src)
    assert cache.fetch(sha, tmp_path / "out") is True
    assert (tmp_path / "out").read_bytes() == data
    cache.evict(sha)
    assert cache.fetch(sha, tmp_path / "out2") is False


def test_filesystem_entries_are_encrypted_and_private(tmp_path: Path) -> None:
    cache = FilesystemCache()
    data = b"PLAINTEXT-MARKER" * 1000
    src, sha = _file(tmp_path, "ref", data)
    cache.store(sha, src)
    entry = cache.directory / f"{sha}.fernet"
    assert b"PLAINTEXT-MARKER" not in entry.read_bytes()
    assert oct(cache.directory.stat().st_mode & 0o777) == "0o700"


def test_tampered_entry_is_detected_deleted_and_never_used(tmp_path: Path) -> None:
    cache = FilesystemCache()
    src, sha = _file(tmp_path, "ref", os.urandom(10_000))
    cache.store(sha, src)
    entry = cache.directory / f"{sha}.fernet"
    raw = bytearray(entry.read_bytes())
    raw[200] ^= 0x01
    entry.write_bytes(bytes(raw))
    assert cache.fetch(sha, tmp_path / "out") is False
    assert not entry.exists()


def test_entry_stored_under_wrong_hash_is_rejected(tmp_path: Path) -> None:
    cache = MemoryCache()
    src, _ = _file(tmp_path, "ref", b"abc")
    wrong = hashlib.sha256(b"other").hexdigest()
    cache.store(wrong, src)
    assert cache.fetch(wrong, tmp_path / "out") is False
    assert cache.used_bytes == 0


def test_memory_cache_evicts_least_recently_used(tmp_path: Path) -> None:
    cache = MemoryCache(max_bytes=300_000)  # about 133 kB per encrypted entry
    entries = [_file(tmp_path, f"r{i}", os.urandom(100_000)) for i in range(3)]
    cache.store(entries[0][1], entries[0][0])
    cache.store(entries[1][1], entries[1][0])
    assert cache.fetch(entries[0][1], tmp_path / "o")  # 0 is now most recent
    cache.store(entries[2][1], entries[2][0])
    assert cache.fetch(entries[0][1], tmp_path / "o")
    assert not cache.fetch(entries[1][1], tmp_path / "o")
    assert cache.fetch(entries[2][1], tmp_path / "o")
    cache.clear()
    assert cache.used_bytes == 0


def test_shared_key_lets_two_caches_read_one_directory(tmp_path: Path) -> None:
    key = Fernet.generate_key()
    src, sha = _file(tmp_path, "ref", b"shared" * 100)
    FilesystemCache(tmp_path / "c", encryption_key=key).store(sha, src)
    assert FilesystemCache(tmp_path / "c", encryption_key=key).fetch(sha, tmp_path / "o")
    other = FilesystemCache(tmp_path / "c")  # a different (ephemeral) key cannot read it
    assert other.fetch(sha, tmp_path / "o2") is False


def test_bad_configuration_is_explained() -> None:
    with pytest.raises(DeltaGliderError, match="DG_CACHE_ENCRYPTION_KEY"):
        FilesystemCache(encryption_key="not-a-key")
    with pytest.raises(DeltaGliderError, match="'filesystem' or 'memory'"):
        make_cache("redis")


def test_filesystem_cache_stays_within_its_bound_evicting_least_recently_used(tmp_path: Path) -> None:
    """900 KiB references (1.2 MiB encrypted) into a 4 MiB cache: three fit; a fourth evicts the least recently
    used (the one just fetched survives); one over a quarter of the cap is not cached at all."""
    cache = FilesystemCache(tmp_path / "cache", max_bytes=4 << 20)
    refs = [_file(tmp_path, f"r{i}", os.urandom(900 << 10)) for i in range(4)]
    for i, (src, sha) in enumerate(refs[:3]):
        cache.store(sha, src)
        os.utime(cache.directory / f"{sha}.fernet", (1_000 + i, 1_000 + i))  # r0 oldest, then r1, r2
    assert cache.fetch(refs[0][1], tmp_path / "out0") is True  # r0 is now the most recently used
    cache.store(refs[3][1], refs[3][0])  # over the bound: r1, the least recently used, goes
    assert cache.used_bytes() <= cache.max_bytes
    kept = sorted(p.name for p in cache.directory.glob("*.fernet"))
    assert kept == sorted(f"{refs[i][1]}.fernet" for i in (0, 2, 3))
    too_big = _file(tmp_path, "big", os.urandom(2 << 20))
    cache.store(too_big[1], too_big[0])  # over a quarter of the cap: not kept, nothing else evicted
    assert cache.fetch(too_big[1], tmp_path / "big-out") is False
    assert sorted(p.name for p in cache.directory.glob("*.fernet")) == kept


def test_disk_bound_reaches_the_store_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from deltaglider_core import DeltaStore

    monkeypatch.setenv("DG_CACHE_DISK_SIZE_MB", "7")
    with DeltaStore(object()) as store:
        assert isinstance(store.cache, FilesystemCache) and store.cache.max_bytes == 7 << 20
    monkeypatch.setenv("DG_CACHE_DISK_SIZE_MB", "lots")
    with pytest.raises(DeltaGliderError, match="DG_CACHE_DISK_SIZE_MB='lots' is not an integer"):
        DeltaStore(object())
