"""The artifact store: `model_NNN/` directories written atomically and read back only when their hashes match.

A directory appears under its final name in one `os.rename`, so a reader sees either nothing or a complete
model; a writer that crashes leaves only a `.tmp-*` directory, which readers ignore and
`cleanup_stale_tmp` removes. Several processes (workers on one shared volume) may write at once: each
claims the next free number by the rename itself and retries on a collision.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import shutil
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from app.core.errors import BadInput, Conflict, IntegrityError, NotFound

DIR_PATTERN = re.compile(r"^model_(\d{3,})$")
TMP_PREFIX = ".tmp-"
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
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.root / f"{TMP_PREFIX}{uuid.uuid4().hex}"
        tmp.mkdir()
        try:
            build(tmp)
            files = _files(tmp)
            if not files:
                raise BadInput("the model build wrote no files; nothing to store")
            hashes = {}
            for path in files:
                with path.open("rb") as handle:
                    os.fsync(handle.fileno())
                hashes[path.relative_to(tmp).as_posix()] = sha256_file(path)
            for directory in {p.parent for p in files}:
                _fsync_dir(directory)
            dir_name = self._publish(tmp)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        _fsync_dir(self.root)
        return dir_name, hashes

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
        """Return the directory only if every recorded file is there, unchanged, and nothing was added."""
        directory = self.path(dir_name)
        if not directory.is_dir():
            raise NotFound(f"model directory {directory} does not exist; its files were removed")
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
        extra = sorted({p.relative_to(directory).as_posix() for p in _files(directory)} - set(expected))
        if extra:
            raise IntegrityError(
                f"{dir_name} holds files not saved with the model: {', '.join(extra)}; refusing to load"
            )
        return directory

    def replace_file(self, dir_name: str, rel: str, content: bytes) -> str:
        """Atomically swap one documentary file (e.g. metadata.json) and return its new SHA-256."""
        target = self.path(dir_name) / rel
        tmp = target.with_name(f"{TMP_PREFIX}{uuid.uuid4().hex}-{target.name}")
        with tmp.open("wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
        _fsync_dir(target.parent)
        return hashlib.sha256(content).hexdigest()

    def remove(self, dir_name: str) -> None:
        shutil.rmtree(self.path(dir_name), ignore_errors=True)

    def list_dirs(self) -> list[str]:
        """Published directories, oldest number first (temp directories are never listed)."""
        if not self.root.is_dir():
            return []
        found = [(int(m.group(1)), m.group(0)) for m in map(DIR_PATTERN.match, os.listdir(self.root)) if m]
        return [name for _, name in sorted(found) if (self.root / name).is_dir()]

    def cleanup_stale_tmp(self, older_than_s: float = 3600.0) -> list[str]:
        """Remove temp directories left by crashed writers; recent ones may belong to a live writer."""
        if not self.root.is_dir():
            return []
        cutoff = time.time() - older_than_s
        removed = []
        for entry in os.scandir(self.root):
            if entry.name.startswith(TMP_PREFIX) and entry.stat().st_mtime < cutoff:
                shutil.rmtree(entry.path, ignore_errors=True)
                removed.append(entry.name)
        return sorted(removed)
