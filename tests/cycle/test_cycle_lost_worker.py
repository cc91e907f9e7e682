"""A worker that stops beating mid-build (frozen with SIGSTOP, as a host whose link is cut: alive, silent) has
its build declared lost within lease + sweep, retried on another worker, and the cycle finishes. When the
frozen worker comes back (SIGCONT) it writes nothing: no second model, no change to the cycle, no RQ report.

The multi-host test (tests/s3/test_multihost.py, root only) does the same with a real cut link.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import pytest
from rq.job import Job
from sqlmodel import select

from app.core.db import session_scope
from app.core.redis import get_redis
from app.services.cycle import get_cycle, start_cycle
from app.tables.models import ModelEvent
from tests.cycle.helpers import definition, seed_candles

ROOT = Path(__file__).resolve().parents[2]
LEASE, SWEEP = 2, 0.5


def _worker(name: str) -> subprocess.Popen:
    env = {**os.environ, "JOB_LEASE_SECONDS": str(LEASE), "LOST_JOB_SWEEP_SECONDS": str(SWEEP),
           "LOG_LEVEL": "WARNING"}
    return subprocess.Popen([sys.executable, "-m", "tests.cycle.lease_worker", name], cwd=ROOT, env=env,
                            start_new_session=True)


def _wait(what: str, ok: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not ok():
        assert time.monotonic() < deadline, f"{what} within {timeout} s"
        time.sleep(0.1)


def _trained(cycle_id: str) -> list[str]:
    with session_scope() as session:
        stmt = select(ModelEvent.model_name).where(ModelEvent.cycle_id == cycle_id,
                                                   ModelEvent.event == "trained")
        return sorted(session.exec(stmt).all())


def _kill(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        for p in [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]:
            p.send_signal(signal.SIGCONT)
            p.kill()
    proc.wait(timeout=10)


@pytest.mark.slow
def test_build_of_a_silent_worker_is_retried_elsewhere_and_the_worker_back_writes_nothing() -> None:
    seed_candles(days=1, symbols=["BTC-USDT", "ETH-USDT"])
    slow = definition("random_forest", "slow_forest", n_estimators=300, max_depth=12)
    cycle = start_cycle(
        "operator", {"definitions": [slow], "window_days": 1, "symbols": ["BTC-USDT", "ETH-USDT"]}
    )
    build_id = f"cycle-{cycle.id}-build-0"
    frozen, other = _worker("frozen"), None
    try:
        _wait("the build started", lambda: get_cycle(cycle.id).progress.get("slow_forest", {}).get("state")
              == "running", 90)
        time.sleep(0.3)
        family = [psutil.Process(frozen.pid), *psutil.Process(frozen.pid).children(recursive=True)]
        assert len(family) >= 2, "the worker should run its build in a forked work horse"
        for proc in family:  # the worker and its horse: alive, silent, as behind a cut link
            proc.send_signal(signal.SIGSTOP)
        frozen_at = time.monotonic()

        other = _worker("other")
        _wait("the cycle finished", lambda: get_cycle(cycle.id).status not in ("queued", "running"), 120)
        done = get_cycle(cycle.id)
        build = Job.fetch(build_id, connection=get_redis())
        assert done.status == "succeeded", done.errors
        assert done.progress["slow_forest"]["attempts"] == 2
        assert build.get_status() == "finished" and build.worker_name.startswith("other-")
        lost = [e for e in done.errors if e.get("model") == "slow_forest"]
        assert lost and "declared lost" in lost[0]["message"] and lost[0]["level"] == "warning", done.errors
        assert len(_trained(cycle.id)) == 1
        print(f"lost build retried and cycle done {time.monotonic() - frozen_at:.1f} s after the freeze")

        # the frozen worker comes back: its horse finishes its fit; nothing of it may land anywhere
        before = (done.status, done.progress, done.results, done.errors, done.finished_ts)
        for proc in family:
            proc.send_signal(signal.SIGCONT)
        horse = family[1:]
        _gone, alive = psutil.wait_procs(horse, timeout=90)
        assert not alive, "the lost try's work horse should end (killed by its worker, or exit unreported)"
        time.sleep(2 * LEASE)  # a beat or two of the worker that came back
        assert frozen.poll() is None, "the worker that came back carries on serving"
        after = get_cycle(cycle.id)
        assert (after.status, after.progress, after.results, after.errors, after.finished_ts) == before
        assert len(_trained(cycle.id)) == 1, "the lost try saved a second model"
        build = Job.fetch(build_id, connection=get_redis())
        assert build.get_status() == "finished" and build.worker_name.startswith("other-")
        assert [r.type.name for r in build.results()] == ["SUCCESSFUL"], "the lost try reported to RQ"
        assert build.latest_result().return_value["state"] == "succeeded"
    finally:
        _kill(frozen)
        if other is not None:
            _kill(other)
