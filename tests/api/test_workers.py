"""`mlpipe api --workers 2`: two real processes on one port. A status change and a key revocation reach
both at once (Redis events), and /metrics sums the requests of both (PROMETHEUS_MULTIPROC_DIR)."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.api.ml_setup import Trained, save

MLPIPE = Path(sys.executable).parent / "mlpipe"


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture()
def two_processes(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    port, metrics_dir = _port(), tmp_path / "metrics"
    metrics_dir.mkdir()
    (metrics_dir / "counter_1.db").write_bytes(b"old")  # an earlier run's samples: removed at start
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir), "LOG_LEVEL": "WARNING"}
    log = tmp_path / "api.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([str(MLPIPE), "api", "--workers", "2", "--port", str(port)], env=env,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200 and len(_pids(metrics_dir)) >= 2:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        else:
            pytest.fail(f"mlpipe api --workers 2 did not start: {log.read_text()[-2000:]}")
        yield base, metrics_dir
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def _pids(metrics_dir: Path) -> set[str]:
    return {m.group(1) for p in metrics_dir.glob("*.db") if (m := re.search(r"_(\d+)\.db$", p.name))}


def _each(base: str, path: str, headers: dict, n: int = 30) -> list[httpx.Response]:
    """n requests, each on a new connection, so the kernel hands them to either process."""
    return [httpx.get(f"{base}{path}", headers=headers, timeout=10) for _ in range(n)]


@pytest.mark.slow
def test_status_changes_and_revocations_reach_both_processes_and_metrics_add_up(
    trained: Trained, two_processes: tuple[str, Path]
) -> None:
    from app.services import keys
    from app.services.models import set_status

    base, metrics_dir = two_processes
    name = save(trained, "direction_small", status="candidate")
    key = keys.create_key("predict")
    headers = {"X-API-Key": key}

    before = _each(base, f"/models/{name}", headers)
    assert all(r.status_code == 200 and r.json()["champion"] is False for r in before)
    served_by = {p for p in _pids(metrics_dir) if list(metrics_dir.glob(f"histogram_{p}.db"))}
    assert len(served_by) == 2, "both processes answered (each writes its own samples)"

    set_status(name, "active", "test")  # publishes on Redis: every process reloads
    time.sleep(3)
    after = _each(base, f"/models/{name}", headers)
    assert all(r.json()["champion"] is True for r in after), [r.json()["champion"] for r in after]

    keys.revoke(key)  # within the 30 s key cache of both processes, but the event empties it
    time.sleep(2)
    revoked = _each(base, f"/models/{name}", headers)
    assert [r.status_code for r in revoked] == [401] * len(revoked)

    text = httpx.get(f"{base}/metrics", timeout=10).text
    counted = sum(
        float(m.group(1)) for m in re.finditer(
            r'mlpipe_http_request_seconds_count\{[^}]*route="/models/\{name\}"[^}]*\} ([0-9.e+]+)', text)
    )
    assert counted == len(before) + len(after) + len(revoked)  # the sum over both processes
    assert not (metrics_dir / "counter_1.db").exists()
