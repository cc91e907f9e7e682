"""A real `mlpipe worker` (RQ's forking worker) for the multi-host test, tuned to notice a lost host fast:
its job heartbeat lasts 3 s (not >= 60 s) and it looks for abandoned jobs every 2 s (not every 10 min).

    python -m tests.s3.netns_worker <host name>
"""

from __future__ import annotations

import os
import sys

from app.core.queues import KINDS, get_queue
from app.core.redis import rq_connection
from workers.worker import MlpipeWorker


class FastRecoveryWorker(MlpipeWorker):
    def get_heartbeat_ttl(self, job, working_time: float = 0.0) -> int:  # noqa: ANN001
        return 3


if __name__ == "__main__":
    from app.cli.stack import _logging_settings, _preload_job_modules

    _logging_settings()
    _preload_job_modules()  # as `mlpipe worker` does: one OpenMP thread, the ML stack imported before forks
    worker = FastRecoveryWorker(
        [get_queue(k) for k in KINDS], connection=rq_connection(), job_monitoring_interval=1,
        maintenance_interval=2, name=f"{sys.argv[1]}-{os.getpid()}",
    )
    worker.work(with_scheduler=True, logging_level="WARNING")
