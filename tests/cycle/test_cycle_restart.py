"""Restarting every process mid-cycle loses no finished work and leaves no cycle stuck as running.

Two real forking RQ workers (subprocesses) run a cycle of a quick and a slow build; once the quick model
is saved, every worker and its work-horse is SIGKILLed (as a machine restart would). New `mlpipe worker`
processes then take over: the abandoned build is retried, the finished one is kept, the cycle ends.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from sqlmodel import select

from app.core.db import session_scope
from app.core.queues import KINDS, get_queue
from app.core.redis import get_redis, rq_connection
from app.services.cycle import get_cycle, recover_interrupted, start_cycle
from app.services.cycle import lock as cycle_lock
from app.store.artifacts import sha256_file
from app.tables.models import ModelRecord
from tests.cycle.helpers import definition, seed_candles
from workers.worker import PromptSimpleWorker

ROOT = Path(__file__).resolve().parents[2]
SYMBOLS = ["BTC-USDT", "ETH-USDT"]
TERMINAL = ("succeeded", "partial", "interrupted")
# a long-running forking worker whose job leases last 2 s, so the jobs of a killed one are soon found
# abandoned (the default JOB_LEASE_SECONDS is 60 s; the cycle's lock TTL is sized for that default)
KILLABLE_WORKER = (
    "from app.core.redis import rq_connection\n"
    "from workers.worker import MlpipeWorker\n"
    "from app.core.queues import KINDS, get_queue\n"
    "MlpipeWorker([get_queue(k) for k in KINDS], connection=rq_connection(), lease_seconds=2,\n"
    "             job_monitoring_interval=1).work(logging_level='WARNING')\n"
)
MLPIPE = "from app.cli import main; main()"


def _spawn(code: str, *args: str) -> subprocess.Popen:
    env = {**os.environ, "LOG_LEVEL": "WARNING"}
    return subprocess.Popen([sys.executable, "-c", code, *args], cwd=ROOT, env=env, start_new_session=True)


def _kill_all(procs: list[subprocess.Popen]) -> int:
    """SIGKILL every worker and every process below it (its work-horse) at once; return how many died."""
    family = []
    for proc in procs:
        try:
            parent = psutil.Process(proc.pid)
            family += [parent, *parent.children(recursive=True)]
        except psutil.NoSuchProcess:
            pass
    for member in family:
        try:
            member.send_signal(signal.SIGKILL)
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(family, timeout=10)
    for proc in procs:
        proc.wait(timeout=10)
    return len(family)


def _models() -> dict[str, ModelRecord]:
    with session_scope() as session:
        return {r.name: r for r in session.exec(select(ModelRecord)).all()}


def _assert_intact(record: ModelRecord, store_dir: Path) -> None:
    assert record.artifact_sha256, f"{record.name} has no artifact hashes"
    for rel, digest in record.artifact_sha256.items():
        assert sha256_file(store_dir / record.store_dir / rel) == digest, f"{record.name}: {rel} changed"


@pytest.mark.slow
def test_restarting_every_worker_mid_cycle_keeps_finished_models_and_the_cycle_ends(store_dir: Path) -> None:
    seed_candles(days=1, symbols=SYMBOLS)
    quick = definition("gradient_boosting", "quick_model")
    slow = definition("random_forest", "slow_forest", n_estimators=800, max_depth=12)
    options = {"definitions": [quick, slow], "window_days": 1, "symbols": SYMBOLS}
    cycle = start_cycle("operator", options)

    first = [_spawn(KILLABLE_WORKER), _spawn(KILLABLE_WORKER)]
    try:
        deadline = time.monotonic() + 90
        while True:
            progress = get_cycle(cycle.id).progress
            states = {name: entry.get("state") for name, entry in progress.items()}
            if states.get("quick_model") == "succeeded" and states.get("slow_forest") == "running":
                break
            assert states.get("slow_forest") != "succeeded", "the slow build ended before the kill"
            assert all(p.poll() is None for p in first), "a worker ended on its own"
            assert time.monotonic() < deadline, f"never reached mid-cycle: {states}"
            time.sleep(0.05)
        killed = _kill_all(first)  # every worker process, at once, as a restart would
    finally:
        for p in first:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
    assert killed >= 3, "one worker should have been inside a build in its forked work-horse"

    mid = get_cycle(cycle.id)
    assert mid.status == "running" and mid.progress["slow_forest"]["state"] == "running"
    before = _models()
    [saved] = before.values()
    assert saved.family == "quick_model" and saved.status == "candidate"
    assert {p.name for p in store_dir.glob("model_*")} == {saved.store_dir}, "no half-written directory"
    _assert_intact(saved, store_dir)

    time.sleep(2.5)  # the dead workers' job heartbeats expire
    # the lock outlives the restart: recovery must not drop a cycle that can still finish
    assert recover_interrupted() == [] and cycle_lock.holder() == cycle.id

    second = [_spawn(MLPIPE, "worker", "--burst"), _spawn(MLPIPE, "worker", "--burst")]
    try:
        for p in second:
            assert p.wait(timeout=120) == 0
    finally:
        for p in second:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)

    done = get_cycle(cycle.id)
    assert done.status in TERMINAL, f"cycle left {done.status} at stage {done.stage}"
    assert done.status == "succeeded", done.errors
    slow_progress = done.progress["slow_forest"]
    assert slow_progress["attempts"] == 2 and slow_progress["state"] == "succeeded"
    # its job may have been killed between saving the model and RQ recording the result: a retry then
    # reuses the saved model instead of building another one
    assert done.progress["quick_model"]["state"] == "succeeded"
    assert done.progress["quick_model"]["model"] == saved.name
    after = _models()
    assert len(after) == 2
    kept = after[saved.name]
    assert kept.status == "active"  # ranked by the resumed cycle (its metadata.json says so too)
    unchanged = {rel: digest for rel, digest in kept.artifact_sha256.items() if rel != "metadata.json"}
    assert kept.store_dir == saved.store_dir and unchanged == {
        rel: digest for rel, digest in saved.artifact_sha256.items() if rel != "metadata.json"
    }, "the model saved before the restart must be the same files, not a rebuild"
    for record in after.values():
        _assert_intact(record, store_dir)
    assert {p.name for p in store_dir.glob("model_*")} == {r.store_dir for r in after.values()}
    assert cycle_lock.holder() is None
    assert start_cycle("operator", options).status == "queued", "a new cycle must be able to start"


def test_a_cycle_no_job_can_resume_reads_as_interrupted_once_its_lock_expires(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A worker killed in a stage that has no retry (drift) leaves no job to carry the cycle on: once the
    lock lapses, any read of that cycle (GET /cycles/{id}, `mlpipe cycle --show/--wait`) says so."""
    seed_candles(days=1, symbols=SYMBOLS[:1])
    options = {"definitions": [definition("gradient_boosting", "kept_model")], "window_days": 1}
    cycle = start_cycle("operator", {**options, "symbols": SYMBOLS[:1]})
    worker = PromptSimpleWorker([get_queue(kind) for kind in KINDS], connection=rq_connection())
    worker.work(burst=True, max_jobs=3, logging_level="WARNING")  # start, the build, rank
    assert get_cycle(cycle.id).stage == "rank"
    get_queue("cycle").empty()  # the drift job died with its worker and was not retried
    get_redis().delete(cycle_lock.lock_key())  # what the lock's expiry does, LOCK_TTL_SECONDS later
    from app.core.config import reset_settings

    monkeypatch.setenv("CYCLE_LEASE_SECONDS", "0.3")  # and its jobs have been silent for the lease
    reset_settings()
    time.sleep(0.4)

    shown = get_cycle(cycle.id)
    assert shown.status == "interrupted" and shown.finished_ts is not None
    assert "lock is gone" in shown.errors[-1]["message"]
    [model] = _models().values()
    assert model.family == "kept_model" and model.status == "active"
    assert start_cycle("operator", {**options, "symbols": SYMBOLS[:1]}).status == "queued"
