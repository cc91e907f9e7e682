"""`mlpipe up` starts the stack, grows the store through cron -> queue -> worker, and stops cleanly."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from rq.cron import CronScheduler, get_cron_job_ids
from rq.job import Job, JobStatus

from app.core.redis import get_redis
from app.data.candles import count_candles, last_candle_ts
from workers.jobs import ingest_tick_job

pytestmark = pytest.mark.slow

MLPIPE = Path(sys.executable).with_name("mlpipe")
SYMBOL = "BTC-USDT"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for(what: str, probe: Callable[[], Any], timeout: float, log: Path, every: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(every)
    pytest.fail(f"{what} not within {timeout:.0f} s; output of `mlpipe up`:\n{log.read_text()[-4000:]}")


def _get(url: str) -> httpx.Response | None:
    try:
        return httpx.get(url, timeout=2.0)
    except httpx.HTTPError:
        return None


@contextmanager
def _mlpipe_up(env: dict[str, str], cwd: Path, port: int) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    log = cwd / "up.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(MLPIPE), "up", "--port", str(port), "--stop-timeout", "20"],
            env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
        try:
            yield proc, log
        finally:
            if proc.poll() is None:  # a failed test: stop it (so it stops its embedded Redis), else kill all
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=40)
                except subprocess.TimeoutExpired:
                    for child in psutil.Process(proc.pid).children(recursive=True):
                        child.kill()
                    proc.kill()
                    proc.wait()


def _wait_ready(proc: subprocess.Popen[bytes], base: str, log: Path) -> dict[str, Any]:
    def ready() -> dict[str, Any] | None:
        if proc.poll() is not None:
            pytest.fail(f"`mlpipe up` exited with {proc.returncode}:\n{log.read_text()[-4000:]}")
        answer = _get(f"{base}/ready")
        return answer.json() if answer is not None and answer.status_code == 200 else None

    return _wait_for("/ready answering 200", ready, 90, log)


def _children(proc: subprocess.Popen[bytes]) -> dict[str, psutil.Process]:
    """`up`'s direct children by role (api, worker, scheduler)."""
    roles = ("api", "worker", "scheduler")
    children = psutil.Process(proc.pid).children()
    found = {arg: child for child in children for arg in child.cmdline() if arg in roles}
    assert set(found) == set(roles), found
    return found


def _check_everything_exits(proc: subprocess.Popen[bytes], log: Path, expected_code: int) -> None:
    descendants = psutil.Process(proc.pid).children(recursive=True)
    assert proc.wait(timeout=45) == expected_code, log.read_text()[-4000:]
    _gone, alive = psutil.wait_procs(descendants, timeout=5)
    assert alive == [], f"still running after `up` exited: {alive}"


def _base_env(store: Path) -> dict[str, str]:
    env = os.environ.copy()
    env.update(
        MODEL_STORE_DIR=str(store), SYMBOLS=SYMBOL, BACKFILL_DAYS="1", MARKET_DATA_SOURCE="simulated",
        LOG_LEVEL="INFO",
    )
    return env


def test_up_backfills_schedules_ingests_through_the_queue_and_stops_all_children(tmp_path: Path) -> None:
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    with _mlpipe_up(_base_env(tmp_path / "store"), tmp_path, port) as (proc, log):
        body = _wait_ready(proc, base, log)
        assert body["checks"]["database"]["ok"] and body["checks"]["redis"]["ok"]
        assert _get(f"{base}/health").json() == {"status": "ok"}
        docs = _get(f"{base}/docs")
        assert docs.status_code == 200 and "swagger" in docs.text.lower()
        assert f"{base}/docs" in log.read_text()

        backfilled = count_candles(SYMBOL)
        assert backfilled > 1000  # one day of 1m candles, minus nothing but the current minute

        tick_name = f"{ingest_tick_job.__module__}.{ingest_tick_job.__name__}"

        def scheduler_registered() -> bool:
            schedulers = CronScheduler.all(get_redis())
            return any(job.func_name == tick_name for s in schedulers for job in s.get_jobs())

        _wait_for("the CronScheduler registering the ingest tick", scheduler_registered, 30, log)

        last = last_candle_ts(SYMBOL)
        _wait_for("a new candle from the 1-minute ingest", lambda: last_candle_ts(SYMBOL) > last, 80, log, 1)
        assert count_candles(SYMBOL) > backfilled
        redis = get_redis()
        ticks = [Job.fetch(job_id, connection=redis) for job_id in get_cron_job_ids(tick_name, redis)]
        assert any(job.get_status() == JobStatus.FINISHED for job in ticks), "no tick ran through RQ"

        _children(proc)
        proc.send_signal(signal.SIGTERM)
        _check_everything_exits(proc, log, expected_code=0)
    assert "SIGTERM received: stopping" in log.read_text()


def test_up_with_nothing_configured_uses_embedded_services_and_stops_all_when_a_child_dies(
    tmp_path: Path,
) -> None:
    store = tmp_path / "store"
    env = _base_env(store)
    for key in ("DATABASE_URL", "REDIS_URL"):
        env.pop(key, None)
    port = _free_port()
    with _mlpipe_up(env, tmp_path, port) as (proc, log):
        body = _wait_ready(proc, f"http://127.0.0.1:{port}", log)
        assert body["checks"]["redis"]["ok"]
        assert (store / "mlpipe.db").is_file()
        printed = log.read_text()
        assert f"sqlite:///{store.resolve() / 'mlpipe.db'}" in printed
        socket_url = re.search(r"redis\s+(unix://\S+)", printed)
        assert socket_url, printed
        assert Redis.from_url(socket_url.group(1)).ping()

        worker = _children(proc)["worker"]
        worker.kill()
        _check_everything_exits(proc, log, expected_code=1)
    assert f"worker-1 (pid {worker.pid}) exited with code -9; stopping the others" in log.read_text()
    with pytest.raises(RedisConnectionError):  # the embedded server stopped with `up`
        Redis.from_url(socket_url.group(1), socket_connect_timeout=1).ping()
