"""Redis loses the cycle lock mid-cycle (FLUSHALL, then a restart without persistence): no second cycle
starts while a job of the first is alive; once none is, the first reads as interrupted, never succeeded,
and a new one starts. And a job whose cycle was superseded while it was paused stops before writing."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from redis import Redis

from app.core.config import reset_settings
from app.core.redis import reset_redis
from app.services.cycle import CycleRunning, get_cycle, start_cycle
from app.services.cycle.rows import read as read_row
from tests.cycle.helpers import definition, seed_candles
from tests.faults.stack import Process, RedisServer, app_env

SYMBOLS = ["BTC-USDT", "ETH-USDT"]
FAST_LEASE = {"CYCLE_HEARTBEAT_SECONDS": "0.3", "CYCLE_LEASE_SECONDS": "2", "CYCLE_LOCK_TTL_SECONDS": "4"}


@pytest.fixture()
def own_redis(monkeypatch: pytest.MonkeyPatch) -> Iterator[RedisServer]:
    server = RedisServer()
    monkeypatch.setenv("REDIS_URL", server.url)
    for key, value in FAST_LEASE.items():
        monkeypatch.setenv(key, value)
    reset_settings()
    reset_redis()
    yield server
    reset_redis()
    server.stop()


def _wait(predicate, timeout: float, what: str) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _horses(worker: Process) -> list[psutil.Process]:
    try:
        return psutil.Process(worker.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def _worker_up(server: RedisServer, env: dict, log: Path, *args: str) -> Process:
    """A worker process, once it has registered with Redis (the cycle is started after: the short test
    lock would lapse while a worker is still importing on a loaded machine)."""
    from rq import Worker

    worker = Process(["worker", *args], env, log)
    _wait(lambda: Worker.count(connection=Redis.from_url(server.url)) > 0 or not worker.alive(), 60,
          "the worker to register")
    assert worker.alive(), worker.tail()
    return worker


def _beating(cycle_id: str) -> bool:
    beat = get_cycle(cycle_id).heartbeat_ts
    return beat is not None and time.time() - beat.timestamp() < 1.0


def _refused(options: dict) -> str | None:
    try:
        start_cycle("operator", options)
    except CycleRunning as exc:
        return exc.running_id
    return None


@pytest.mark.slow
def test_flushall_and_a_restart_mid_build_never_let_a_second_cycle_start_while_a_job_lives(
    own_redis: RedisServer, store_dir: Path, tmp_path: Path
) -> None:
    seed_candles(days=1, symbols=SYMBOLS)
    slow = definition("random_forest", "slow_forest", n_estimators=900, max_depth=12)
    options = {"definitions": [slow], "window_days": 1, "symbols": SYMBOLS, "ingest": False}
    env = app_env(os.environ["DATABASE_URL"], own_redis.url, store_dir, **FAST_LEASE)
    worker = _worker_up(own_redis, env, tmp_path / "worker.log")
    first = start_cycle("operator", options)
    try:
        _wait(lambda: get_cycle(first.id).progress.get("slow_forest", {}).get("state") == "running", 60,
              "the build to start")
        horse = _horses(worker)
        assert horse, "the build runs in a forked work horse"

        Redis.from_url(own_redis.url).flushall()  # the lock and every queue are gone
        refusals = [_refused(options)]
        own_redis.restart()  # and again, a restart without persistence
        reset_redis()
        refusals.append(_refused(options))
        assert refusals == [first.id, first.id], "a second cycle started while the first one's build ran"
        assert get_cycle(first.id).status == "running"
        checks = 0
        while _beating(first.id):  # the build's job is alive: it beats every 0.3 s
            assert _refused(options) == first.id, "a second cycle started while the first one's job beat"
            checks += 1
            time.sleep(0.3)
        assert checks >= 2, "the build ended before it could be checked"
    finally:
        worker.kill()

    # no job of the first can carry it on (its queued rank and drift were flushed): it is lost
    _wait(lambda: get_cycle(first.id).status == "interrupted", 30, "the first cycle to read interrupted")
    second = start_cycle("operator", options)
    assert second.status == "queued"
    assert get_cycle(first.id).status == "interrupted"


@pytest.mark.slow
def test_a_paused_job_whose_cycle_was_superseded_stops_before_its_next_write(
    own_redis: RedisServer, store_dir: Path, tmp_path: Path
) -> None:
    from sqlmodel import select

    from app.core.db import session_scope
    from app.tables.models import ModelEvent

    seed_candles(days=1, symbols=SYMBOLS)
    slow = definition("random_forest", "slow_forest", n_estimators=600, max_depth=12)
    options = {"definitions": [slow], "window_days": 1, "symbols": SYMBOLS, "ingest": False}
    env = app_env(os.environ["DATABASE_URL"], own_redis.url, store_dir, **FAST_LEASE)
    worker = _worker_up(own_redis, env, tmp_path / "worker.log")
    first = start_cycle("operator", options)
    try:
        _wait(lambda: get_cycle(first.id).progress.get("slow_forest", {}).get("state") == "running", 60,
              "the build to start")
        paused = [worker.popen.pid] + [p.pid for p in _horses(worker)]
        for pid in paused:
            os.kill(pid, signal.SIGSTOP)  # a long GC pause, a frozen VM: its heartbeats stop
        time.sleep(5)  # past the lock's expiry and the lease
        second = start_cycle("operator", {**options, "definitions": [definition("xgboost", "quick_dir")]})
        assert get_cycle(first.id).status == "interrupted"
        for pid in paused:
            os.kill(pid, signal.SIGCONT)
        # the first cycle's build finishes, finds its lock lost, and stops
        _wait(lambda: "its lock was lost" in worker.log.read_text(errors="replace"), 60,
              "the stale job to stop")
    finally:
        worker.kill()

    stale = get_cycle(first.id)
    assert stale.status == "interrupted", "the superseded cycle's job wrote its status"
    assert stale.progress["slow_forest"]["state"] == "running", "the superseded job recorded its build"
    with session_scope() as session:
        events = session.exec(select(ModelEvent).where(ModelEvent.cycle_id == first.id)).all()
    assert events == [], "the superseded job saved a model after its cycle was superseded"
    # the stored row, not the read view: with no worker left, the new cycle's own lease runs out and a read
    # shows it as lost; what matters is that the stale job wrote nothing into it
    untouched = read_row(second.id)
    assert untouched.status in ("queued", "running"), "the stale job wrote the new cycle's status"
    assert untouched.errors == [], "the stale job wrote into the new cycle"
