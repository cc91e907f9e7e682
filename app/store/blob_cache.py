"""Verified local copies of content-addressed artifacts, so an API process downloads each one once.

A blob is kept under its SHA-256 only after its downloaded bytes hash to that name, and is hashed again
whenever it is used: a cache file that was changed or cut short is thrown away and fetched again, never
loaded. A model's directory is materialised from hard links to its blobs, in a temp directory renamed
into place, so a loader sees the whole directory or none. Several processes may share one cache (a
rename onto an existing name is a lost race, and the winner's copy is as good).

Pruning (`prune`) keeps the cache bounded in size and age: least recently used first (a use touches the
files), never a blob that `keep` or a pin names (the models a process serves: `pin`), never one used in the
last few minutes (a load in progress in any process sharing the cache). A model directory goes with any
blob it is made of (its hard links would otherwise keep the bytes on disk).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from app.core.errors import IntegrityError
from app.store.artifacts import sha256_file

TMP_PREFIX = ".tmp-"
PRUNE_GRACE_S = 300.0  # a blob used this recently is never pruned: a load may be between fetch and link


@dataclass(frozen=True)
class Pruned:
    removed: tuple[str, ...]  # the hashes of the blobs removed
    freed_bytes: int
    bytes_after: int


class BlobCache:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.downloads = 0  # objects fetched from the store by this process (the figure a test checks)
        self._lock = threading.Lock()
        self._pins: dict[str, frozenset[str]] = {}

    @property
    def _blobs(self) -> Path:
        return self.root / "blobs"

    def _tmp(self) -> Path:
        self.root.mkdir(parents=True, exist_ok=True)
        return self.root / f"{TMP_PREFIX}{uuid.uuid4().hex}"

    def has(self, sha: str) -> bool:
        path = self._blobs / sha
        if not path.is_file():
            return False
        if sha256_file(path) == sha:
            _touch(path)
            return True
        path.unlink(missing_ok=True)  # changed or cut short: fetch it again
        return False

    def fetch(self, sha: str, download: Callable[[Path], bool], label: str) -> Path:
        """The verified blob `sha`, downloaded with `download(dest)` when it is not cached yet."""
        path = self._blobs / sha
        if self.has(sha):
            return path
        tmp = self._tmp()
        try:
            if not download(tmp):
                raise IntegrityError(f"{label} is missing from the object store; cannot load the model")
            with self._lock:
                self.downloads += 1
            got = sha256_file(tmp)
            if got != sha:
                raise IntegrityError(
                    f"{label} was modified after it was saved (SHA-256 {got[:12]}... differs from the "
                    f"recorded {sha[:12]}...); refusing to load it. Restore the object or retrain."
                )
            self._blobs.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        return path

    def directory(self, dir_name: str, files: dict[str, str]) -> Path | None:
        """The materialised directory of these exact files, if it is cached and every file still verifies."""
        target = self._dir_path(dir_name, files)
        if not target.is_dir():
            return None
        present = {p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file()}
        if present == set(files) and all(sha256_file(target / rel) == sha for rel, sha in files.items()):
            for rel in files:  # hard links: this touches the blobs too
                _touch(target / rel)
            _touch(target)
            return target
        shutil.rmtree(target, ignore_errors=True)
        return None

    def materialise(self, dir_name: str, files: dict[str, str]) -> Path:
        """Build the directory from cached blobs (all of them must be fetched first)."""
        target = self._dir_path(dir_name, files)
        tmp = self._tmp()
        try:
            for rel, sha in files.items():
                dest = tmp / rel
                dest.parent.mkdir(parents=True, exist_ok=True)
                try:
                    os.link(self._blobs / sha, dest)
                except OSError:
                    shutil.copyfile(self._blobs / sha, dest)
            target.parent.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(OSError):  # a concurrent loader won the rename: its copy is as good
                os.rename(tmp, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        found = self.directory(dir_name, files)
        if found is None:
            raise IntegrityError(f"the cached copy of {dir_name} does not verify; retry the load")
        return found

    # ---- pruning ---------------------------------------------------------------------------------------
    def pin(self, owner: str, shas: Iterable[str]) -> None:
        """Blobs `owner` (e.g. this process's served models) needs: never pruned while pinned."""
        with self._lock:
            self._pins[owner] = frozenset(shas)

    def pinned(self) -> frozenset[str]:
        with self._lock:
            return frozenset().union(*self._pins.values())

    def prune(self, keep: Iterable[str] = (), *, max_bytes: float, max_age_s: float,
              grace_s: float = PRUNE_GRACE_S, now: float | None = None) -> Pruned:
        """Remove the least recently used blobs no kept or pinned model needs (and the model directories
        made of them) until the cache holds at most `max_bytes` and none of them was last used more than
        `max_age_s` ago. A blob used within `grace_s` stays even over the size bound. One process prunes a
        shared cache at a time (a file lock); leftovers of crashed loaders (temp files) go too."""
        now = time.time() if now is None else now
        protected = set(keep) | self.pinned()
        self.root.mkdir(parents=True, exist_ok=True)
        with (self.root / ".prune.lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            self._drop_stale_tmp(now - grace_s)
            blobs = {p.name: p.stat() for p in self._entries(self._blobs)}
            dirs = self._model_dirs({st.st_ino: sha for sha, st in blobs.items()})
            total = sum(st.st_size for st in blobs.values()) + sum(own for _, own in dirs.values())
            removed: list[str] = []
            freed = 0
            for used, sha in sorted((st.st_mtime, sha) for sha, st in blobs.items() if sha not in protected):
                if total <= max_bytes and now - used <= max_age_s:
                    break  # the rest were used more recently still
                path = self._blobs / sha
                with contextlib.suppress(FileNotFoundError):
                    if now - path.stat().st_mtime < grace_s:
                        continue  # used a moment ago (by another process): a load may need it now
                    for directory, (shas, own) in list(dirs.items()):
                        if sha in shas:
                            shutil.rmtree(directory, ignore_errors=True)
                            total, freed = total - own, freed + own
                            del dirs[directory]
                    path.unlink()
                    total, freed = total - blobs[sha].st_size, freed + blobs[sha].st_size
                    removed.append(sha)
            for directory, (shas, own) in list(dirs.items()):  # made of blobs gone (removed by hand)
                if not shas <= protected and not shas <= set(blobs) - set(removed):
                    shutil.rmtree(directory, ignore_errors=True)
                    total, freed = total - own, freed + own
        return Pruned(tuple(removed), freed, total)

    @staticmethod
    def _entries(folder: Path) -> list[Path]:
        return [p for p in folder.iterdir() if not p.name.startswith(TMP_PREFIX)] if folder.is_dir() else []

    def _model_dirs(self, blob_of_inode: dict[int, str]) -> dict[Path, tuple[frozenset[str], int]]:
        """Each materialised model directory: the blobs it is made of, and the bytes only it holds (files
        copied where the file system has no hard links; those are hashed to know their blob)."""
        found = {}
        for directory in self._entries(self.root / "models"):
            shas, own = set(), 0
            for file in (f for f in directory.rglob("*") if f.is_file()):
                st = file.stat()
                sha = blob_of_inode.get(st.st_ino)
                if sha is None:
                    sha, own = sha256_file(file), own + st.st_size
                shas.add(sha)
            found[directory] = (frozenset(shas), own)
        return found

    def _drop_stale_tmp(self, before: float) -> None:
        for path in self.root.glob(f"{TMP_PREFIX}*"):
            with contextlib.suppress(OSError):
                if path.stat().st_mtime < before:
                    shutil.rmtree(path) if path.is_dir() else path.unlink()

    def _dir_path(self, dir_name: str, files: dict[str, str]) -> Path:
        digest = hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()[:16]
        return self.root / "models" / f"{dir_name}-{digest}"


def _touch(path: Path) -> None:
    """Mark a cache file used now (pruning removes the least recently used first)."""
    with contextlib.suppress(OSError):
        os.utime(path)


_caches: dict[Path, BlobCache] = {}
_caches_lock = threading.Lock()


def blob_cache() -> BlobCache:
    """This process's cache at `BLOB_CACHE_DIR` (default `<MODEL_STORE_DIR>/blob-cache`)."""
    from app.core.config import get_settings

    settings = get_settings()
    root = Path(settings.blob_cache_dir or settings.model_store_dir / "blob-cache").resolve()
    with _caches_lock:
        return _caches.setdefault(root, BlobCache(root))
