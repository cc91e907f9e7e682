"""Where artifacts live: a local directory (the default) or an S3-compatible bucket (`MODEL_STORE_URL`).

`ObjectStore` is the small surface the stores need: put (optionally only if the key is absent, the one
atomic claim S3 offers), get, download, list with modification times, delete. `S3Objects` goes through
boto3 (no S3 protocol code here); every call has a connect and read timeout and at most
`S3_MAX_ATTEMPTS` (2) attempts, and an unreachable or failing service is an `Unavailable` (a fast 503)
naming the URL, never a hang or a 500. `LocalObjects` keeps the same keys as files under a root, written
atomically (temp file + rename).
"""

from __future__ import annotations

import contextlib
import os
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

from app.core.errors import BadInput, Unavailable

_KEY = re.compile(r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$")
TMP_PREFIX = ".tmp-"


def check_key(key: str) -> str:
    if not _KEY.match(key) or any(part in ("", ".", "..") for part in key.split("/")):
        raise BadInput(f"{key!r} is not a valid store key")
    return key


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    modified: float  # POSIX seconds
    size: int


class ObjectStore(Protocol):
    url: str

    def put(self, key: str, data: bytes | Path, *, if_absent: bool = False) -> bool:
        """Store `data` under `key`; with `if_absent`, False (and nothing written) when the key exists."""

    def get(self, key: str) -> bytes | None:
        """The object's bytes, or None when there is no such key."""

    def download(self, key: str, dest: Path) -> bool:
        """Write the object to `dest`; False when there is no such key."""

    def list(self, prefix: str) -> list[ObjectInfo]:
        """Every object whose key starts with `prefix`."""

    def delete(self, keys: list[str]) -> None:
        """Remove the keys (missing ones are ignored)."""


class LocalObjects:
    """Keys as files under `root` (the default `MODEL_STORE_DIR`)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.url = str(self.root)

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def put(self, key: str, data: bytes | Path, *, if_absent: bool = False) -> bool:
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.parent / f"{TMP_PREFIX}{uuid.uuid4().hex}"
        try:
            content = data.read_bytes() if isinstance(data, Path) else data
            with tmp.open("wb") as handle:
                handle.write(content)
                handle.flush()
                os.fsync(handle.fileno())
            if if_absent:
                try:
                    os.link(tmp, target)  # fails when the key exists: an atomic claim
                except FileExistsError:
                    return False
            else:
                os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
        return True

    def get(self, key: str) -> bytes | None:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            return None

    def download(self, key: str, dest: Path) -> bool:
        content = self.get(key)
        if content is None:
            return False
        dest.write_bytes(content)
        return True

    def list(self, prefix: str) -> list[ObjectInfo]:
        base = self.root / prefix.rstrip("/") if prefix else self.root
        if not base.exists():
            return []
        found = []
        for path in sorted(base.rglob("*")):
            if path.is_file() and not path.name.startswith(TMP_PREFIX):
                stat = path.stat()
                found.append(ObjectInfo(path.relative_to(self.root).as_posix(), stat.st_mtime, stat.st_size))
        return found

    def delete(self, keys: list[str]) -> None:
        for key in keys:
            self._path(key).unlink(missing_ok=True)


def _unavailable(url: str, exc: Exception) -> Unavailable:
    return Unavailable(f"the object store {url} is unreachable or failing: {exc}; retry when it is back")


class S3Objects:
    """Keys under `s3://bucket/prefix`, through boto3 (endpoint and credentials: settings or AWS_* vars)."""

    def __init__(self, bucket: str, prefix: str, client: Any) -> None:
        self.bucket, self.prefix, self.client = bucket, prefix.strip("/"), client
        self.url = f"s3://{bucket}/{self.prefix}".rstrip("/")

    def _key(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    @contextlib.contextmanager
    def _calls(self) -> Iterator[None]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            yield
        except ClientError as exc:
            status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
            code = exc.response.get("Error", {}).get("Code", "")
            if status >= 500 or status in (0, 403) or code in ("NoSuchBucket", "AccessDenied"):
                raise _unavailable(self.url, exc) from exc
            raise
        except BotoCoreError as exc:  # connect/read timeouts, refused connections, missing credentials
            raise _unavailable(self.url, exc) from exc

    def ensure_bucket(self) -> bool:
        """Create the bucket when it does not exist (`mlpipe migrate`); True when it was created."""
        from botocore.exceptions import ClientError

        try:
            with self._calls():
                self.client.head_bucket(Bucket=self.bucket)
            return False
        except ClientError as exc:
            if int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0) != 404:
                raise
        with self._calls():
            self.client.create_bucket(Bucket=self.bucket)
        return True

    def put(self, key: str, data: bytes | Path, *, if_absent: bool = False) -> bool:
        from botocore.exceptions import ClientError

        body = data.read_bytes() if isinstance(data, Path) else data
        extra = {"IfNoneMatch": "*"} if if_absent else {}
        try:
            with self._calls():
                self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=body, **extra)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if if_absent and code in ("PreconditionFailed", "ConditionalRequestConflict"):
                return False
            raise
        return True

    def get(self, key: str) -> bytes | None:
        from botocore.exceptions import ClientError

        try:
            with self._calls():
                response = self.client.get_object(Bucket=self.bucket, Key=self._key(key))
                return response["Body"].read()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise

    def download(self, key: str, dest: Path) -> bool:
        content = self.get(key)
        if content is None:
            return False
        dest.write_bytes(content)
        return True

    def list(self, prefix: str) -> list[ObjectInfo]:
        full = self._key(prefix.rstrip("/")) + "/" if prefix else (f"{self.prefix}/" if self.prefix else "")
        strip = len(self.prefix) + 1 if self.prefix else 0
        found = []
        with self._calls():
            pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=full)
            for page in pages:
                for item in page.get("Contents", []):
                    found.append(ObjectInfo(item["Key"][strip:], item["LastModified"].timestamp(),
                                            int(item.get("Size", 0))))
        return found

    def delete(self, keys: list[str]) -> None:
        with self._calls():
            for start in range(0, len(keys), 1000):
                batch = [{"Key": self._key(k)} for k in keys[start:start + 1000]]
                if batch:
                    self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})


def parse_s3_url(url: str) -> tuple[str, str]:
    match = re.match(r"^s3://([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:/(.*))?$", url)
    if not match:
        raise BadInput(f"MODEL_STORE_URL {url!r} is not s3://bucket[/prefix] (bucket: 3-63 lowercase chars)")
    return match[1], (match[2] or "").strip("/")


@lru_cache(maxsize=8)
def _s3_client(endpoint: str | None, region: str | None, timeout: float, attempts: int, key_id: str | None,
               secret: str | None) -> Any:
    import boto3
    from botocore.config import Config

    config = Config(connect_timeout=timeout, read_timeout=timeout, retries={"total_max_attempts": attempts,
                    "mode": "standard"}, s3={"addressing_style": "path"},
                    request_checksum_calculation="when_required",
                    response_checksum_validation="when_required")
    return boto3.session.Session().client(
        "s3", endpoint_url=endpoint, region_name=region or "us-east-1", config=config,
        aws_access_key_id=key_id, aws_secret_access_key=secret,
    )


def object_store() -> ObjectStore:
    """The store the settings name: `MODEL_STORE_URL` (s3://) when set, else `MODEL_STORE_DIR`."""
    from app.core.config import get_settings

    settings = get_settings()
    if not settings.model_store_url:
        return LocalObjects(settings.model_store_dir)
    bucket, prefix = parse_s3_url(settings.model_store_url)
    client = _s3_client(settings.s3_endpoint_url or os.environ.get("AWS_ENDPOINT_URL"),
                        settings.s3_region or os.environ.get("AWS_DEFAULT_REGION"),
                        settings.s3_timeout_seconds, settings.s3_max_attempts, settings.s3_access_key_id,
                        settings.s3_secret_access_key)
    return S3Objects(bucket, prefix, client)
