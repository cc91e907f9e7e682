"""The model store over an object store (S3): content-addressed objects, then a manifest written last.

Layout under the store's prefix:

    objects/<sha256>                 every artifact, named by its hash (identical files are stored once)
    models/model_NNN/manifest.json   {"files": {rel: sha256}}; a model exists only once this exists
    models/model_NNN/metadata.json   the readable copy of the database row (a document: never verified)

`write` uploads the objects first and claims the name with a conditional put of the manifest
(`If-None-Match: *`), so a writer that dies mid-upload leaves only objects no manifest names (invisible,
and swept once older than the sweep's age), and two writers never claim one number. `read_verified`
compares the manifest with the hashes recorded in the database, downloads the objects into the local
`BlobCache` (each checked against its hash), and returns a local directory built from them; when every
blob is cached and verifies, it makes no network call at all.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from app.core.errors import BadInput, Conflict, IntegrityError, NotFound
from app.core.logging import get_logger
from app.store.artifacts import DIR_PATTERN, DOCUMENTS, _files, sha256_file
from app.store.blob_cache import BlobCache
from app.store.objects import ObjectStore

log = get_logger(__name__)
MANIFEST = "manifest.json"
_MAX_CLAIMS = 1000


class ObjectModelStore:
    def __init__(self, objects: ObjectStore, cache: BlobCache) -> None:
        self.objects, self.cache = objects, cache
        self.root = objects.url  # for messages (the local store's attribute of the same name)

    # ---- writing ---------------------------------------------------------------------------------------
    def write(self, build: Callable[[Path], None]) -> tuple[str, dict[str, str]]:
        """Build the files in a private temp dir, upload them as objects, then claim `model_NNN`."""
        tmp = Path(tempfile.mkdtemp(prefix="mlpipe-build-"))
        try:
            build(tmp)
            files = _files(tmp)
            if not files:
                raise BadInput("the model build wrote no files; nothing to store")
            hashes = {p.relative_to(tmp).as_posix(): sha256_file(p) for p in files}
            hashes = {rel: sha for rel, sha in hashes.items() if rel not in DOCUMENTS}
            for rel, sha in sorted(hashes.items()):
                # Always uploaded, even when an identical object exists: the put renews its age, so the
                # sweep never takes an old unreferenced object that this manifest is about to name.
                self.objects.put(f"objects/{sha}", tmp / rel)
            manifest = json.dumps({"files": hashes, "created": time.time()}, sort_keys=True).encode()
            dir_name = self._claim(manifest)
            for rel in sorted(DOCUMENTS):
                if (tmp / rel).is_file():
                    self.objects.put(f"models/{dir_name}/{rel}", tmp / rel)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return dir_name, hashes

    def _claim(self, manifest: bytes) -> str:
        number = self._highest_number() + 1
        for _ in range(_MAX_CLAIMS):
            name = f"model_{number:03d}"
            if self.objects.put(f"models/{name}/{MANIFEST}", manifest, if_absent=True):
                return name
            number = max(number + 1, self._highest_number() + 1)
        raise Conflict(f"could not claim a model name in {self.root} after {_MAX_CLAIMS} tries")

    def _published(self) -> dict[str, float]:
        """Published model names -> when their manifest was written."""
        found = {}
        for info in self.objects.list("models"):
            parts = info.key.split("/")
            if len(parts) == 3 and parts[2] == MANIFEST and DIR_PATTERN.match(parts[1]):
                found[parts[1]] = info.modified
        return found

    def _highest_number(self) -> int:
        return max((int(DIR_PATTERN.match(n).group(1)) for n in self._published()), default=0)

    # ---- reading ---------------------------------------------------------------------------------------
    def path(self, dir_name: str) -> str:
        if not DIR_PATTERN.match(dir_name):
            raise BadInput(f"{dir_name!r} is not a model directory name (expected model_NNN)")
        return f"models/{dir_name}"

    def read_verified(self, dir_name: str, expected: dict[str, str]) -> Path:
        """A local directory of the model's files, each proven to hash to what the database recorded."""
        prefix = self.path(dir_name)
        expected = {rel: digest for rel, digest in expected.items() if rel not in DOCUMENTS}
        if not expected:
            raise IntegrityError(f"no hashes are recorded for {dir_name}; refusing to load unverified files")
        cached = self.cache.directory(dir_name, expected)
        if cached is not None:
            return cached
        raw = self.objects.get(f"{prefix}/{MANIFEST}")
        if raw is None:
            raise NotFound(f"model {dir_name} is not in {self.root} (no manifest); its files were removed")
        try:
            listed = dict(json.loads(raw)["files"])
        except (ValueError, KeyError, TypeError):
            raise IntegrityError(f"the manifest of {dir_name} is unreadable; refusing to load it") from None
        if listed != expected:
            changed = sorted(set(listed.items()) ^ set(expected.items()))
            raise IntegrityError(
                f"the manifest of {dir_name} differs from the hashes recorded in the database "
                f"({', '.join(sorted({rel for rel, _ in changed}))}); refusing to load it"
            )
        for rel, sha in sorted(expected.items()):
            self.cache.fetch(sha, lambda dest, s=sha: self.objects.download(f"objects/{s}", dest),
                             label=f"{dir_name}/{rel} (objects/{sha[:12]}...)")
        return self.cache.materialise(dir_name, expected)

    # ---- documents -------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def document_lock(self, dir_name: str) -> Iterator[str]:
        """A Redis lock across hosts (no shared file system to flock); without Redis, no lock: the document
        is a copy of the row, and the next write or `sweep_store` mends a lost update."""
        from redis.exceptions import RedisError

        from app.core.config import get_settings
        from app.core.redis import get_redis

        prefix = self.path(dir_name)
        lock = None
        try:
            lock = get_redis().lock(f"{get_settings().queue_prefix}:store:doc:{dir_name}", timeout=30,
                                    blocking_timeout=5)
            if not lock.acquire():
                lock = None
        except RedisError as exc:
            log.warning("document_lock_unavailable", model=dir_name, error=str(exc))
            lock = None
        try:
            yield prefix
        finally:
            if lock is not None:
                with contextlib.suppress(RedisError):
                    lock.release()

    def read_document(self, dir_name: str, rel: str) -> bytes | None:
        if rel not in DOCUMENTS:
            raise BadInput(f"{rel!r} is not a document of a model ({', '.join(sorted(DOCUMENTS))})")
        return self.objects.get(f"{self.path(dir_name)}/{rel}")

    def write_document(self, dir_name: str, rel: str, content: bytes) -> None:
        if rel not in DOCUMENTS:
            raise BadInput(f"{rel!r} is not a document of a model ({', '.join(sorted(DOCUMENTS))})")
        self.objects.put(f"{self.path(dir_name)}/{rel}", content)  # one put replaces it whole

    # ---- listing and sweeping --------------------------------------------------------------------------
    def remove(self, dir_name: str) -> None:
        """Unpublish: the manifest goes first; objects (maybe shared) are left for the sweep."""
        prefix = self.path(dir_name)
        self.objects.delete([f"{prefix}/{MANIFEST}"])
        self.objects.delete([f"{prefix}/{rel}" for rel in sorted(DOCUMENTS)])

    def list_dirs(self) -> list[str]:
        return sorted(self._published(), key=lambda n: int(DIR_PATTERN.match(n).group(1)))

    def modified(self, dir_name: str) -> float:
        return self._published().get(dir_name, time.time())

    def cleanup_stale_tmp(self, older_than_s: float = 3600.0) -> list[str]:
        """Remove what dead writers left: objects no manifest names, documents of unpublished models."""
        cutoff = time.time() - older_than_s
        published = self._published()
        referenced: set[str] = set()
        for name in published:
            raw = self.objects.get(f"models/{name}/{MANIFEST}")
            if raw is None:
                continue
            try:
                referenced.update(json.loads(raw)["files"].values())
            except (ValueError, KeyError, TypeError, AttributeError):
                log.warning("manifest_unreadable", model=name)
                return []  # never sweep objects while a manifest cannot be read: it may name them
        stale = [
            info.key for info in self.objects.list("objects")
            if info.key.split("/", 1)[1] not in referenced and info.modified < cutoff
        ]
        for info in self.objects.list("models"):
            parts = info.key.split("/")
            if len(parts) == 3 and parts[1] not in published and info.modified < cutoff:
                stale.append(info.key)
        # A model published while we listed may name an old object it has just re-put: spare those.
        for name in set(self._published()) - set(published):
            raw = self.objects.get(f"models/{name}/{MANIFEST}")
            names = set(json.loads(raw)["files"].values()) if raw else set()
            stale = [k for k in stale
                     if k.split("/", 1)[1] not in names and not k.startswith(f"models/{name}/")]
        self.objects.delete(stale)
        return sorted(stale)
