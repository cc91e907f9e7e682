"""A real `mlpipe worker` (RQ's forking MlpipeWorker) under a name, for the tests of lost workers.

    JOB_LEASE_SECONDS=2 LOST_JOB_SWEEP_SECONDS=0.5 python -m tests.cycle.lease_worker <name>

Its lease and sweep come from the settings (short ones in the tests); it is named `<name>-<pid>` so a test
can tell which worker ran a job (RQ records the worker's name on the job). It runs until killed. With
WORKER_START_FILE set, it imports everything, then waits for that file before it registers (a test starts
its import early, off the clock of what it measures).
"""

from __future__ import annotations

import os
import sys
import time

from app.core.queues import KINDS, get_queue
from app.core.redis import rq_connection
from workers.worker import MlpipeWorker

if __name__ == "__main__":
    from app.cli.stack import _logging_settings, _preload_job_modules

    _logging_settings()
    _preload_job_modules()  # as `mlpipe worker` does: one OpenMP thread, the ML stack imported before forks
    hold = os.environ.get("WORKER_START_FILE")  # a test starts it early and lets it register later
    while hold and not os.path.exists(hold):
        time.sleep(0.2)
    worker = MlpipeWorker([get_queue(k) for k in KINDS], connection=rq_connection(),
                          name=f"{sys.argv[1]}-{os.getpid()}")
    worker.work(with_scheduler=len(sys.argv) > 2 and sys.argv[2] == "--scheduler", logging_level="WARNING")
