"""The blob cache (verified local copies of S3 artifacts) stays bounded: least recently used first, by size
and by age, never a blob a kept or pinned model needs, never one used in the last minutes. Real files."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest

from app.store.blob_cache import BlobCache

KB = 1024
DAY = 86400.0


def _add(cache: BlobCache, payload: bytes) -> str:
    sha = hashlib.sha256(payload).hexdigest()
    cache.fetch(sha, lambda dest: dest.write_bytes(payload) > 0, label="test blob")
    return sha


def _model(cache: BlobCache, name: str, size: int, *, shared: str | None = None) -> dict[str, str]:
    files = {"model.json": _add(cache, os.urandom(size)), "config.json": _add(cache, name.encode())}
    if shared is not None:
        files["shared.bin"] = shared
    cache.materialise(name, files)
    return files


def _age(cache: BlobCache, files: dict[str, str], seconds: float) -> None:
    """As if last used `seconds` ago (hard links: the model directory's files are the same inodes)."""
    when = time.time() - seconds
    for sha in files.values():
        os.utime(cache.root / "blobs" / sha, (when, when))


def _disk_bytes(root: Path) -> int:
    seen: dict[int, int] = {}
    for path in root.rglob("*"):
        if path.is_file() and path.name != ".prune.lock":
            st = path.stat()
            seen[st.st_ino] = st.st_size
    return sum(seen.values())


@pytest.fixture()
def cache(tmp_path: Path) -> BlobCache:
    return BlobCache(tmp_path / "blob-cache")


def test_over_its_size_the_least_recently_used_go_first_but_never_a_kept_one(cache: BlobCache) -> None:
    served = _model(cache, "model_001", 100 * KB)
    old = _model(cache, "model_002", 100 * KB)
    recent = _model(cache, "model_003", 100 * KB)
    _age(cache, served, 3 * DAY)  # the oldest of all, but a served model needs it
    _age(cache, old, 2 * DAY)
    _age(cache, recent, 1 * DAY)
    pruned = cache.prune(served.values(), max_bytes=250 * KB, max_age_s=30 * DAY)

    # blob by blob, until the bound is met: old's large blob goes (its 9-byte config blob, used as long
    # ago, may go first or stay, by the order of equal times); nothing of the other two
    assert old["model.json"] in pruned.removed and set(pruned.removed) <= set(old.values())
    assert pruned.bytes_after == _disk_bytes(cache.root) <= 250 * KB, "the bound is met on disk"
    assert cache.directory("model_001", served) is not None, "the kept model is still whole and verifies"
    assert cache.directory("model_003", recent) is not None
    assert cache.directory("model_002", old) is None and not any(
        (cache.root / "blobs" / sha).exists() for sha in pruned.removed)


def test_blobs_unused_past_the_age_go_even_under_the_size_bound_unless_pinned(cache: BlobCache) -> None:
    pinned = _model(cache, "model_001", 10 * KB)
    stale = _model(cache, "model_002", 10 * KB)
    fresh = _model(cache, "model_003", 10 * KB)
    _age(cache, pinned, 10 * DAY)
    _age(cache, stale, 10 * DAY)
    _age(cache, fresh, 1 * DAY)
    cache.pin("model-cache", pinned.values())  # what an API process holds in memory
    pruned = cache.prune(max_bytes=10**9, max_age_s=7 * DAY)

    assert set(pruned.removed) == set(stale.values())
    assert cache.directory("model_001", pinned) is not None
    assert cache.directory("model_003", fresh) is not None


def test_a_blob_shared_with_a_kept_model_stays_and_the_other_model_directory_goes(cache: BlobCache) -> None:
    shared = _add(cache, os.urandom(50 * KB))
    kept = _model(cache, "model_001", 10 * KB, shared=shared)
    other = _model(cache, "model_002", 10 * KB, shared=shared)
    _age(cache, kept, 9 * DAY)
    _age(cache, other, 9 * DAY)
    pruned = cache.prune(kept.values(), max_bytes=10**9, max_age_s=7 * DAY)

    assert shared not in pruned.removed and set(pruned.removed) == set(other.values()) - {shared}
    assert cache.directory("model_001", kept) is not None
    assert not list((cache.root / "models").glob("model_002-*")), "its hard links would keep the bytes"
    assert pruned.bytes_after == _disk_bytes(cache.root)


def test_blobs_used_a_moment_ago_stay_even_over_the_size_bound(cache: BlobCache) -> None:
    loading = _model(cache, "model_001", 100 * KB)  # just fetched: a load may be about to link them
    pruned = cache.prune(max_bytes=1, max_age_s=1.0)
    assert pruned.removed == () and cache.directory("model_001", loading) is not None

    _age(cache, loading, 3600)  # an hour later nothing protects them
    assert set(cache.prune(max_bytes=1, max_age_s=30 * DAY).removed) == set(loading.values())
    assert _disk_bytes(cache.root) == 0


def test_a_use_counts_as_recent_and_a_crashed_loaders_temp_files_go(cache: BlobCache) -> None:
    first = _model(cache, "model_001", 20 * KB)
    second = _model(cache, "model_002", 20 * KB)
    _age(cache, first, 2 * DAY)
    _age(cache, second, 1 * DAY)
    assert cache.directory("model_001", first) is not None  # a load from the cache: used now
    leftover = cache.root / ".tmp-crashed"
    leftover.write_bytes(b"x" * KB)
    os.utime(leftover, (time.time() - DAY, time.time() - DAY))
    pruned = cache.prune(max_bytes=30 * KB, max_age_s=30 * DAY, grace_s=0)

    assert second["model.json"] in pruned.removed and set(pruned.removed) <= set(second.values()), (
        "the least recently *used*, not the oldest fetched")
    assert not leftover.exists()
