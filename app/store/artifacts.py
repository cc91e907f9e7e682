"""The artifact store: `model_NNN/` directories written atomically and read back only when their hashes match.

A directory appears under its final name in one `os.rename`, so a reader sees either nothing or a complete
model; a writer that crashes leaves only a `.tmp-*` entry in the store root, which readers ignore and
`cleanup_stale_tmp` removes. Several processes (workers on one shared volume) may write at once: each
claims the next free number by the rename itself and retries on a collision.

Two kinds of files live in a model directory. *Artifacts* (the model, `config.json`, `README.md`) are
written once, hashed, and never change: `read_verified` refuses a directory whose artifacts differ from the
recorded hashes, or that holds anything else. *Documents* (`metadata.json`) are readable copies of the
database row that change with it (status, live performance); they are never verified and never loaded, so
a document that lags its row can never make a model unloadable. `write_document` swaps one atomically
(its temp file sits in the store root, never in the model directory) under a per-directory lock.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import re
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from app.core.errors import BadInput, Conflict, IntegrityError, NotFound, Unavailable

DIR_PATTERN = re.compile(r"^model_(\d{3,})$")
TMP_PREFIX = ".tmp-"
DOCUMENTS = frozenset({"metadata.json"})  # copies of the database row: rewritten, never verified
# A write that fails for one of these is the store's condition, not the model's: a 503 naming it.
_STORE_ERRNOS = (errno.ENOSPC, errno.EROFS, errno.EDQUOT, errno.EACCES, errno.EPERM)
_MAX_CLAIMS = 1000
_CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*") if p.is_file())


def store_unavailable(root: Path, exc: OSError) -> Unavailable:
    """A clear 503 for a full, read-only or forbidden store (the caller re-raises anything else)."""
    return Unavailable(
        f"cannot write to the model store {root}: {exc.strerror or exc} (errno {exc.errno}); "
        "free space or make it writable, then retry"
    )



class ModelStore:
    """One store root (`MODEL_STORE_DIR`) holding `model_NNN/` directories."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def write(self, build: Callable[[Path], None]) -> tuple[str, dict[str, str]]:
        """Let `build` fill a private temp directory, then publish it as the next free `model_NNN`.

        Returns the directory name and the SHA-256 of every file in it (relative POSIX paths), which the
        caller records in the database so that `read_verified` can later prove nothing was changed.
        If `build` raises, the temp directory is removed and nothing is published.
        """
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            tmp = self.root / f"{TMP_PREFIX}{uuid.uuid4().hex}"
            tmp.mkdir()
        except OSError as exc:
            if exc.errno in _STORE_ERRNOS:
                raise store_unavailable(self.root, exc) from exc
            raise
        try:
            build(tmp)
            files = _files(tmp)
            if not files:
                raise BadInput("the model build wrote no files; nothing to store")
            hashes = {}
            for path in files:
                with path.open("rb") as handle:
                    os.fsync(handle.fileno())
                rel = path.relative_to(tmp).as_posix()
                if rel not in DOCUMENTS:
                    hashes[rel] = sha256_file(path)
            for directory in {p.parent for p in files}:
                _fsync_dir(directory)
            dir_name = self._publish(tmp)
        except BaseException as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            if isinstance(exc, OSError) and exc.errno in _STORE_ERRNOS:
                raise store_unavailable(self.root, exc) from exc
            condition = self._write_problem() if isinstance(exc, Exception) else None
            if condition is not None:  # a library's own error (XGBoost's) hid that the disk is full
                raise store_unavailable(self.root, condition) from exc
            raise
        _fsync_dir(self.root)
        return dir_name, hashes

    def _write_problem(self) -> OSError | None:
        """The store's own condition, if it cannot take a small write now (full, read-only, forbidden)."""
        probe = self.root / f"{TMP_PREFIX}{uuid.uuid4().hex}-probe"
        try:
            with probe.open("wb") as handle:
                handle.write(b"\0" * 65536)
                handle.flush()
                os.fsync(handle.fileno())
        except OSError as exc:
            return exc if exc.errno in _STORE_ERRNOS else None
        finally:
            with contextlib.suppress(OSError):
                probe.unlink()
        return None

    def _publish(self, tmp: Path) -> str:
        number = self._highest_number() + 1
        for _ in range(_MAX_CLAIMS):
            name = f"model_{number:03d}"
            try:
                # rename never replaces a non-empty directory, and a published one is never empty
                os.rename(tmp, self.root / name)
                return name
            except OSError as exc:
                if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                    raise
                number = max(number + 1, self._highest_number() + 1)
        raise Conflict(f"could not claim a model directory in {self.root} after {_MAX_CLAIMS} tries")

    def _highest_number(self) -> int:
        numbers = [int(m.group(1)) for m in map(DIR_PATTERN.match, os.listdir(self.root)) if m]
        return max(numbers, default=0)

    def path(self, dir_name: str) -> Path:
        """The directory of a published model; names are checked so a caller can never leave the store."""
        if not DIR_PATTERN.match(dir_name):
            raise BadInput(f"{dir_name!r} is not a model directory name (expected model_NNN)")
        return self.root / dir_name

    def read_verified(self, dir_name: str, expected: dict[str, str]) -> Path:
        """Return the directory only if every artifact is there, unchanged, and nothing was added.

        Documents are left out on both sides (rows saved before they were documents list them).
        """
        directory = self.path(dir_name)
        if not directory.is_dir():
            raise NotFound(f"model directory {directory} does not exist; its files were removed")
        expected = {rel: digest for rel, digest in expected.items() if rel not in DOCUMENTS}
        if not expected:
            raise IntegrityError(f"no hashes are recorded for {dir_name}; refusing to load unverified files")
        for rel, want in sorted(expected.items()):
            path = directory / rel
            if not path.is_file():
                raise IntegrityError(f"{dir_name}/{rel} is missing from the store; cannot load the model")
            got = sha256_file(path)
            if got != want:
                raise IntegrityError(
                    f"{dir_name}/{rel} was modified after it was saved (SHA-256 {got[:12]}... differs from "
                    f"the recorded {want[:12]}...); refusing to load it. Restore the file or retrain."
                )
        present = {p.relative_to(directory).as_posix() for p in _files(directory)}
        extra = sorted(present - set(expected) - DOCUMENTS)
        if extra:
            raise IntegrityError(
                f"{dir_name} holds files not saved with the model: {', '.join(extra)}; refusing to load"
            )
        return directory

    @contextmanager
    def document_lock(self, dir_name: str) -> Iterator[Path]:
        """Hold an exclusive lock on a model directory (flock, across processes) while its documents change.

        Writers render a document from the row read *inside* the lock, so the last writer always writes
        the newest committed state, whatever order their commits and writes came in.
        """
        directory = self.path(dir_name)
        fd = os.open(directory, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield directory
        finally:
            os.close(fd)  # closing releases the lock

    def read_document(self, dir_name: str, rel: str) -> bytes | None:
        if rel not in DOCUMENTS:
            raise BadInput(f"{rel!r} is not a document of a model directory ({', '.join(sorted(DOCUMENTS))})")
        try:
            return (self.path(dir_name) / rel).read_bytes()
        except FileNotFoundError:
            return None

    def write_document(self, dir_name: str, rel: str, content: bytes) -> None:
        """Atomically replace one document; on any failure the old one stays and no temp file is left.

        The temp file is written in the store root (same file system, so the rename is atomic), so a crash
        mid-write leaves a `.tmp-*` file that `cleanup_stale_tmp` removes, never an extra file inside the
        model directory.
        """
        if rel not in DOCUMENTS:
            raise BadInput(f"{rel!r} is not a document of a model directory ({', '.join(sorted(DOCUMENTS))})")
        target = self.path(dir_name) / rel
        tmp = self.root / f"{TMP_PREFIX}{uuid.uuid4().hex}-{dir_name}-{rel}"
        try:
            with tmp.open("wb") as handle:
                handle.write(content)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, target)
            _fsync_dir(target.parent)
        except BaseException as exc:
            tmp.unlink(missing_ok=True)
            if isinstance(exc, OSError) and exc.errno in _STORE_ERRNOS:
                raise store_unavailable(self.root, exc) from exc
            raise

    def modified(self, dir_name: str) -> float:
        return self.path(dir_name).stat().st_mtime

    def remove(self, dir_name: str) -> None:
        shutil.rmtree(self.path(dir_name), ignore_errors=True)

    def list_dirs(self) -> list[str]:
        """Published directories, oldest number first (temp directories are never listed)."""
        if not self.root.is_dir():
            return []
        found = [(int(m.group(1)), m.group(0)) for m in map(DIR_PATTERN.match, os.listdir(self.root)) if m]
        return [name for _, name in sorted(found) if (self.root / name).is_dir()]

    def cleanup_stale_tmp(self, older_than_s: float = 3600.0) -> list[str]:
        """Remove temp entries left by crashed writers; recent ones may belong to a live writer.

        Also inside model directories: older releases wrote document temp files there.
        """
        if not self.root.is_dir():
            return []
        cutoff = time.time() - older_than_s
        removed = []
        places = [self.root, *(self.root / name for name in self.list_dirs())]
        for place in places:
            for entry in os.scandir(place):
                if not entry.name.startswith(TMP_PREFIX):
                    continue
                if entry.stat(follow_symlinks=False).st_mtime >= cutoff:
                    continue
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path, ignore_errors=True)
                else:
                    Path(entry.path).unlink(missing_ok=True)
                removed.append(Path(entry.path).relative_to(self.root).as_posix())
        return sorted(removed)
