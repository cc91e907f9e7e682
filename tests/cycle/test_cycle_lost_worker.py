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


def _worker(name: str, start_file: Path | None = None) -> subprocess.Popen:
    env = {**os.environ, "JOB_LEASE_SECONDS": str(LEASE), "LOST_JOB_SWEEP_SECONDS": str(SWEEP),
           "LOG_LEVEL": "WARNING", **({"WORKER_START_FILE": str(start_file)} if start_file else {})}
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


def _ended(proc: psutil.Process) -> bool:
    try:
        return proc.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _kill(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        for p in [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]:
            p.send_signal(signal.SIGCONT)
            p.kill()
    proc.wait(timeout=10)


def _family(proc: subprocess.Popen) -> list[psutil.Process]:
    """A worker and its work horse."""
    family = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
    assert len(family) >= 2, "the worker should run its build in a forked work horse"
    return family


@pytest.mark.slow
def test_builds_of_silent_workers_are_retried_elsewhere_and_the_workers_back_write_nothing(
    tmp_path: Path
) -> None:
    """Two workers frozen mid-build; a third retries both builds. Then they come back two ways: `whole`
    (its next beat learns the try was declared lost and kills the horse, reporting nothing) and `horse`
    (the horse alone, as when RQ's worker quit on a Redis timeout: it must stop before writing and exit
    without reporting)."""
    names = ["slow_a", "slow_b"]
    slow = [definition("random_forest", n, n_estimators=200, max_depth=12) for n in names]
    symbols = ["BTC-USDT", "ETH-USDT"]
    seed_candles(days=1, symbols=symbols)
    cycle = start_cycle("operator", {"definitions": slow, "window_days": 1, "symbols": symbols})
    builds = [f"cycle-{cycle.id}-build-{i}" for i in range(len(names))]
    go = tmp_path / "go"
    frozen = {"whole": _worker("whole"), "horse": _worker("horse")}
    other = _worker("other", start_file=go)  # imports now, registers once told to
    try:
        _wait("both builds running", lambda: all(
            get_cycle(cycle.id).progress.get(n, {}).get("state") == "running" for n in names), 90)
        time.sleep(0.3)
        families = {how: _family(proc) for how, proc in frozen.items()}
        for proc in (p for family in families.values() for p in family):
            proc.send_signal(signal.SIGSTOP)  # alive and silent, as behind a cut link
        frozen_at = time.monotonic()

        go.touch()
        _wait("the cycle finished", lambda: get_cycle(cycle.id).status not in ("queued", "running"), 120)
        done = get_cycle(cycle.id)
        assert done.status == "succeeded", done.errors
        for name, build_id in zip(names, builds, strict=True):
            assert done.progress[name]["attempts"] == 2
            build = Job.fetch(build_id, connection=get_redis())
            assert build.get_status() == "finished" and build.worker_name.startswith("other-")
            lost = [e for e in done.errors if e.get("model") == name]
            assert lost and "declared lost" in lost[0]["message"], done.errors
            assert lost[0]["level"] == "warning"  # retried, so not an error of the cycle
        assert len(_trained(cycle.id)) == len(names)
        print(f"lost builds retried and cycle done {time.monotonic() - frozen_at:.1f} s after the freeze")

        # they come back; their horses finish their fits: nothing of it may land anywhere
        before = (done.status, done.progress, done.results, done.errors, done.finished_ts)
        for how, family in families.items():
            for proc in family[1:] if how == "horse" else family:
                proc.send_signal(signal.SIGCONT)
        # each horse ends, killed by its worker or exiting unreported (a zombie until its stopped worker
        # reaps it)
        _wait("the lost tries' work horses ended", lambda: all(
            _ended(p) for family in families.values() for p in family[1:]), 90)
        families["horse"][0].send_signal(signal.SIGCONT)
        time.sleep(2 * LEASE)  # a beat or two of the workers that came back
        assert all(proc.poll() is None for proc in frozen.values()), "a worker back carries on serving"
        after = get_cycle(cycle.id)
        assert (after.status, after.progress, after.results, after.errors, after.finished_ts) == before
        assert len(_trained(cycle.id)) == len(names), "a lost try saved a second model"
        for build_id in builds:
            build = Job.fetch(build_id, connection=get_redis())
            assert build.get_status() == "finished" and build.worker_name.startswith("other-")
            assert [r.type.name for r in build.results()] == ["SUCCESSFUL"], "a lost try reported to RQ"
            assert build.latest_result().return_value["state"] == "succeeded"
    finally:
        for proc in [*frozen.values(), other]:
            _kill(proc)
