"""A real forking RQ worker (`mlpipe worker --burst`'s class) whose work horse SIGKILLs itself at chosen
points of a cycle, as an out-of-memory kill or a machine fault would.

    KILL_AT=start,build,rank,drift,retrain,finish  KILL_TIMES=1  KILL_DIR=/tmp/x  python -m ...killing_worker

Each point kills the horse the first KILL_TIMES times it is reached (counted in files under KILL_DIR, so
the count survives the horse); the worker itself survives and RQ retries the job if it can.
    start    after the start stage enqueued its builds
    build    after a build saved its model, before the job reports it
    rank     inside the ranking transaction, after its first status change, before the commit
    drift    after the drift stage recorded its first event
    retrain  after a retrain saved its new version, before it decides
    finish   as the finish stage begins
"""

from __future__ import annotations

import os
import signal
from functools import wraps
from pathlib import Path
from typing import Any

KILL_AT = set(filter(None, os.environ.get("KILL_AT", "").split(",")))
KILL_TIMES = int(os.environ.get("KILL_TIMES", "1"))
KILL_DIR = Path(os.environ.get("KILL_DIR", "/tmp"))


def _maybe_die(point: str) -> None:
    if point not in KILL_AT:
        return
    marker = KILL_DIR / f"killed-{point}"
    done = int(marker.read_text()) if marker.exists() else 0
    if done < KILL_TIMES:
        marker.write_text(str(done + 1))
        os.kill(os.getpid(), signal.SIGKILL)


def _after(module: Any, name: str, point: str) -> None:
    real = getattr(module, name)

    @wraps(real)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        result = real(*args, **kwargs)
        _maybe_die(point)
        return result

    setattr(module, name, wrapper)


def _before(module: Any, name: str, point: str) -> None:
    real = getattr(module, name)

    @wraps(real)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        _maybe_die(point)
        return real(*args, **kwargs)

    setattr(module, name, wrapper)


def install() -> None:
    from app.services.cycle import build, drift, finish, plan, retrain, start

    _after(start, "enqueue_builds", "start")
    _after(build, "save_model", "build")
    _after(plan, "change_status", "rank")  # a retrain's plan passes here too: only the rank stage runs first
    _after(drift, "record_event", "drift")
    _after(retrain, "save_model", "retrain")
    _before(finish, "finish_cycle", "finish")


if __name__ == "__main__":
    from app.cli.stack import _preload_job_modules
    from app.core.queues import KINDS, get_queue
    from app.core.redis import rq_connection
    from workers.worker import MlpipeWorker

    _preload_job_modules()
    install()
    worker = MlpipeWorker([get_queue(k) for k in KINDS], connection=rq_connection())
    worker.work(burst=True, logging_level="WARNING")
