"""A worker SIGKILLed mid-build: its job is found abandoned, retried once, and the cycle still finishes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from rq.job import Job

from app.core.redis import get_redis
from app.services.cycle import get_cycle, start_cycle
from tests.cycle.helpers import definition, run_workers, seed_candles

ROOT = Path(__file__).resolve().parents[2]


def _kill_all(pid: int) -> None:
    parent = psutil.Process(pid)
    family = [parent, *parent.children(recursive=True)]
    assert len(family) >= 2, "the worker should be running its build in a forked work-horse"
    for proc in family:
        os.kill(proc.pid, signal.SIGKILL)
    psutil.wait_procs(family, timeout=10)


@pytest.mark.slow
def test_build_of_a_killed_worker_is_retried_once_and_the_cycle_finishes(store_dir: Path) -> None:
    seed_candles(days=1, symbols=["BTC-USDT", "ETH-USDT"])
    slow = definition("random_forest", "slow_forest", n_estimators=400, max_depth=12)
    cycle = start_cycle(
        "operator", {"definitions": [slow], "window_days": 1, "symbols": ["BTC-USDT", "ETH-USDT"]}
    )
    worker = subprocess.Popen(
        [sys.executable, "-m", "tests.cycle.short_heartbeat_worker"],
        cwd=ROOT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 90
        while get_cycle(cycle.id).progress.get("slow_forest", {}).get("state") != "running":
            assert worker.poll() is None, "the worker ended before the build started"
            assert time.monotonic() < deadline, "the build never started"
            time.sleep(0.1)
        time.sleep(0.5)
        _kill_all(worker.pid)  # the worker and its work-horse (own process group), as a crash would
        worker.wait(timeout=10)
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
    build = Job.fetch(f"cycle-{cycle.id}-build-0", connection=get_redis())
    assert build.get_status() == "started" and build.retries_left == 1
    assert not list(store_dir.glob("model_*")), "no model directory may be visible from a killed build"

    time.sleep(2.5)  # the dead worker's job heartbeat expires
    run_workers()  # a new worker's maintenance finds the job abandoned and retries it

    build = Job.fetch(f"cycle-{cycle.id}-build-0", connection=get_redis())
    assert build.retries_left == 0 and build.get_status() == "finished"
    done = get_cycle(cycle.id)
    assert done.status == "succeeded", done.errors
    assert done.progress["slow_forest"]["attempts"] == 2
    assert done.progress["slow_forest"]["state"] == "succeeded"
    assert len(list(store_dir.glob("model_*"))) == 1
