"""A real RQ worker (forking, like `mlpipe worker`) whose job heartbeat lasts 2 s instead of >= 60 s.

The kill test uses it so that a job it was running when SIGKILLed is found abandoned within seconds.
"""

from __future__ import annotations

from rq import Worker

from app.core.queues import KINDS, get_queue
from app.core.redis import get_redis


class ShortHeartbeatWorker(Worker):
    def get_heartbeat_ttl(self, job, working_time: float = 0.0) -> int:  # noqa: ANN001
        return 2


if __name__ == "__main__":
    worker = ShortHeartbeatWorker(
        [get_queue(k) for k in KINDS], connection=get_redis(), job_monitoring_interval=1
    )
    worker.work(burst=True, logging_level="WARNING")
