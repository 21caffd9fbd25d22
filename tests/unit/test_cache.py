from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from deltaglider_core import DeltaGliderError
from deltaglider_core.storage.cache import PLAIN_CHUNK, SUFFIX, FilesystemCache, MemoryCache, make_cache


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
    entry = cache.entry_path(sha)
    assert b"PLAINTEXT-MARKER" not in entry.read_bytes()
    assert oct(cache.directory.stat().st_mode & 0o777) == "0o700"


def test_tampered_entry_is_detected_deleted_and_never_used(tmp_path: Path) -> None:
    cache = FilesystemCache()
    src, sha = _file(tmp_path, "ref", os.urandom(10_000))
    cache.store(sha, src)
    entry = cache.entry_path(sha)
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
    cache = MemoryCache(max_bytes=250_000)  # 100 kB (and 28 bytes) per encrypted entry
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
    """1000 KiB references into a 4 MiB cache: four fit; a fifth evicts the least recently used (the one just
    fetched survives); one over a quarter of the cap is not cached at all."""
    cache = FilesystemCache(tmp_path / "cache", max_bytes=4 << 20)
    refs = [_file(tmp_path, f"r{i}", os.urandom(1000 << 10)) for i in range(5)]
    for i, (src, sha) in enumerate(refs[:4]):
        cache.store(sha, src)
        os.utime(cache.entry_path(sha), (1_000 + i, 1_000 + i))  # r0 oldest, then r1, r2, r3
    assert len(list(cache.directory.glob(f"*{SUFFIX}"))) == 4
    assert cache.fetch(refs[0][1], tmp_path / "out0") is True  # r0 is now the most recently used
    cache.store(refs[4][1], refs[4][0])  # over the bound: r1, the least recently used, goes
    assert cache.used_bytes() <= cache.max_bytes
    kept = sorted(p.name for p in cache.directory.glob(f"*{SUFFIX}"))
    assert kept == sorted(cache.entry_path(refs[i][1]).name for i in (0, 2, 3, 4))
    too_big = _file(tmp_path, "big", os.urandom(2 << 20))
    cache.store(too_big[1], too_big[0])  # over a quarter of the cap: not kept, nothing else evicted
    assert cache.fetch(too_big[1], tmp_path / "big-out") is False
    assert sorted(p.name for p in cache.directory.glob(f"*{SUFFIX}")) == kept


def test_disk_bound_reaches_the_store_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from deltaglider_core import DeltaStore

    monkeypatch.setenv("DG_CACHE_DISK_SIZE_MB", "7")
    with DeltaStore(object()) as store:
        assert isinstance(store.cache, FilesystemCache) and store.cache.max_bytes == 7 << 20
    monkeypatch.setenv("DG_CACHE_DISK_SIZE_MB", "lots")
    with pytest.raises(DeltaGliderError, match="DG_CACHE_DISK_SIZE_MB='lots' is not an integer"):
        DeltaStore(object())


def _records(entry: Path) -> list[bytes]:
    raw, out = entry.read_bytes(), []
    while raw:
        length = int.from_bytes(raw[:4], "big")
        out.append(raw[: 4 + length])
        raw = raw[4 + length :]
    return out


def test_records_cannot_be_cut_off_reordered_or_moved_to_another_entry(tmp_path: Path) -> None:
    """Each record is authenticated with its entry, position and last-ness: an entry missing its last record,
    with two records swapped, or copied under another entry's name is a miss (and deleted), never a short or
    scrambled reference."""
    data = os.urandom(2 * PLAIN_CHUNK + 5)
    src, sha = _file(tmp_path, "ref", data)
    other_src, other_sha = _file(tmp_path, "other", os.urandom(100))
    cache = FilesystemCache(tmp_path / "c")
    cache.store(sha, src)
    cache.store(other_sha, other_src)
    entry = cache.entry_path(sha)
    good = entry.read_bytes()
    records = _records(entry)
    assert len(records) == 3 and b"".join(records) == good
    for damaged in (b"".join(records[:2]), records[1] + records[0] + records[2], good[:-1]):
        entry.write_bytes(damaged)
        assert cache.fetch(sha, tmp_path / "out") is False
        assert not entry.exists()
    moved = cache.entry_path(other_sha)
    entry.write_bytes(good)
    moved.write_bytes(good)  # a valid entry of ``sha`` stored under ``other_sha``
    assert cache.fetch(other_sha, tmp_path / "out") is False and not moved.exists()
    assert cache.fetch(sha, tmp_path / "out") is True
    assert (tmp_path / "out").read_bytes() == data


@pytest.mark.parametrize("size", [0, 1, PLAIN_CHUNK, PLAIN_CHUNK + 1])
def test_chunk_boundaries_roundtrip(tmp_path: Path, size: int) -> None:
    src, sha = _file(tmp_path, "ref", os.urandom(size))
    for cache in (FilesystemCache(tmp_path / "c"), MemoryCache()):
        cache.store(sha, src)
        out = tmp_path / f"out-{type(cache).__name__}"
        assert cache.fetch(sha, out) is True
        assert out.read_bytes() == src.read_bytes()


def test_entries_of_earlier_versions_count_against_the_bound_and_are_evicted(tmp_path: Path) -> None:
    """A directory shared with an earlier version holds ``*.fernet`` entries: they are never read, but they
    count against the bound and go first when they are the least recently used."""
    directory = tmp_path / "c"
    directory.mkdir()
    old = directory / f"{'a' * 64}.fernet"
    old.write_bytes(os.urandom(3 << 20))
    os.utime(old, (1_000, 1_000))
    cache = FilesystemCache(directory, max_bytes=4 << 20)
    assert cache.used_bytes() == 3 << 20
    src, sha = _file(tmp_path, "ref", os.urandom(1 << 20))
    cache.store(sha, src)
    assert not old.exists()
    assert cache.used_bytes() <= cache.max_bytes
    assert cache.fetch(sha, tmp_path / "out") is True


def test_key_is_derived_not_used_as_given(tmp_path: Path) -> None:
    """The shared secret is not the AES key: an entry sealed with the raw 32 bytes does not open."""
    import base64

    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    key = Fernet.generate_key()
    src, sha = _file(tmp_path, "ref", b"payload")
    nonce = os.urandom(12)
    sealed = nonce + AESGCM(base64.urlsafe_b64decode(key)).encrypt(nonce, b"payload", sha.encode() + bytes(8) + b"\x01")
    directory = tmp_path / "c"
    directory.mkdir()
    (directory / f"{sha}{SUFFIX}").write_bytes(len(sealed).to_bytes(4, "big") + sealed)
    assert FilesystemCache(directory, encryption_key=key).fetch(sha, tmp_path / "out") is False
    FilesystemCache(directory, encryption_key=key).store(sha, src)
    assert FilesystemCache(directory, encryption_key=key.decode()).fetch(sha, tmp_path / "out") is True


def test_processes_under_other_keys_never_delete_each_others_entries(tmp_path: Path) -> None:
    """One cache directory, two processes' caches with other keys, or none (#28, finding 11): neither opens, takes
    for corrupt, or deletes the other's entries."""
    src, sha = _file(tmp_path, "ref", os.urandom(300 << 10))
    key = Fernet.generate_key()
    mine = FilesystemCache(tmp_path / "shared", encryption_key=key)
    theirs = FilesystemCache(tmp_path / "shared", encryption_key=Fernet.generate_key())
    keyless = FilesystemCache(tmp_path / "shared")
    mine.store(sha, src)
    assert theirs.fetch(sha, tmp_path / "t") is False and keyless.fetch(sha, tmp_path / "k") is False
    assert mine.entry_path(sha).exists()
    assert mine.fetch(sha, tmp_path / "m") is True and (tmp_path / "m").read_bytes() == src.read_bytes()
    same = FilesystemCache(tmp_path / "shared", encryption_key=key)
    assert same.fetch(sha, tmp_path / "s") is True  # the same key: the same entry


def test_a_killed_writers_partial_entry_is_counted_then_removed(tmp_path: Path) -> None:
    cache = FilesystemCache(tmp_path / "c", max_bytes=64 << 20)
    left = cache.directory / "leftover.tmp"
    left.write_bytes(os.urandom(1 << 20))
    assert cache.used_bytes() == 1 << 20  # counted against the bound
    os.utime(left, (1_000, 1_000))  # older than STALE_TMP_S: its writer is gone
    writing = cache.directory / "in-progress.tmp"
    writing.write_bytes(b"x" * 10)  # a live writer's: kept
    src, sha = _file(tmp_path, "ref", os.urandom(10 << 10))
    cache.store(sha, src)
    assert not left.exists() and writing.exists()
