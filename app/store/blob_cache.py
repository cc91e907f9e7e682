"""Verified local copies of content-addressed artifacts, so an API process downloads each one once.

A blob is kept under its SHA-256 only after its downloaded bytes hash to that name, and is hashed again
whenever it is used: a cache file that was changed or cut short is thrown away and fetched again, never
loaded. A model's directory is materialised from hard links to its blobs, in a temp directory renamed
into place, so a loader sees the whole directory or none. Several processes may share one cache (a
rename onto an existing name is a lost race, and the winner's copy is as good).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import threading
import uuid
from collections.abc import Callable
from pathlib import Path

from app.core.errors import IntegrityError
from app.store.artifacts import sha256_file

TMP_PREFIX = ".tmp-"


class BlobCache:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.downloads = 0  # objects fetched from the store by this process (the figure a test checks)
        self._lock = threading.Lock()

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

    def _dir_path(self, dir_name: str, files: dict[str, str]) -> Path:
        digest = hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()[:16]
        return self.root / "models" / f"{dir_name}-{digest}"


_caches: dict[Path, BlobCache] = {}
_caches_lock = threading.Lock()


def blob_cache() -> BlobCache:
    """This process's cache at `BLOB_CACHE_DIR` (default `<MODEL_STORE_DIR>/blob-cache`)."""
    from app.core.config import get_settings

    settings = get_settings()
    root = Path(settings.blob_cache_dir or settings.model_store_dir / "blob-cache").resolve()
    with _caches_lock:
        return _caches.setdefault(root, BlobCache(root))
