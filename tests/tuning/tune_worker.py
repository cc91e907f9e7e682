"""A real forking RQ worker (as `mlpipe worker -q tune --burst`) for the tuning tests' subprocesses.

With `TUNE_WORKER_BARRIER=<redis key>:<count>` it starts taking jobs only once `count` such workers have
imported everything (a test of workers running at once must not depend on how fast each one starts on a
loaded machine: the first one up used to run every trial before the second had imported the ML stack)."""

from __future__ import annotations

import os
import time

from app.core.queues import get_queue
from app.core.redis import rq_connection
from workers.worker import MlpipeWorker


def _wait_for_peers(spec: str, timeout: float = 120.0) -> None:
    key, count = spec.rsplit(":", 1)
    connection = rq_connection()
    connection.incr(key)
    deadline = time.monotonic() + timeout
    while int(connection.get(key) or 0) < int(count):
        if time.monotonic() > deadline:
            raise SystemExit(f"only {connection.get(key)} of {count} workers came up in {timeout:g} s")
        time.sleep(0.05)


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import app.ml.kinds  # noqa: F401 - loaded once, before the work horses fork
    import app.services.tuning.finish  # noqa: F401 - as `mlpipe worker` preloads them
    import app.services.tuning.trials  # noqa: F401
    import workers.tuning_jobs  # noqa: F401

    if os.environ.get("TUNE_WORKER_BARRIER"):
        _wait_for_peers(os.environ["TUNE_WORKER_BARRIER"])
    MlpipeWorker([get_queue("tune")], connection=rq_connection()).work(burst=True, logging_level="WARNING")
