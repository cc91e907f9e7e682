"""A real RQ worker (forking, like `mlpipe worker`) whose job lease lasts 2 s instead of 60 s.

The kill test uses it so that a job it was running when SIGKILLed is found abandoned within seconds.
"""

from __future__ import annotations

from app.core.queues import KINDS, get_queue
from app.core.redis import rq_connection
from workers.worker import MlpipeWorker

if __name__ == "__main__":
    worker = MlpipeWorker([get_queue(k) for k in KINDS], connection=rq_connection(), lease_seconds=2,
                          job_monitoring_interval=1)
    worker.work(burst=True, logging_level="WARNING")
