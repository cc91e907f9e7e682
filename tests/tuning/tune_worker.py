"""A real forking RQ worker (as `mlpipe worker -q tune --burst`) for the tuning tests' subprocesses."""

from __future__ import annotations

import os

from app.core.queues import get_queue
from app.core.redis import rq_connection
from workers.worker import MlpipeWorker

if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import app.ml.kinds  # noqa: F401 - loaded once, before the work horses fork
    import workers.tuning_jobs  # noqa: F401

    MlpipeWorker([get_queue("tune")], connection=rq_connection()).work(burst=True, logging_level="WARNING")
