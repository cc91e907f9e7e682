"""A burst worker leaves as soon as its queues are empty: its pubsub listener thread does not hold it.

RQ's teardown sent UNSUBSCRIBE before stopping that thread; when the thread read the confirmation first it
waited 60 s for a subscription, and redis-py joins it without a bound: 1 exit in 6 took a minute (the
flaky `mlpipe tune` test). Thirty exits in a row catch that with probability 1 - (5/6)^30 > 99.5%.
"""

from __future__ import annotations

import time

from app.core.queues import get_queue
from app.core.redis import rq_connection
from workers.worker import MlpipeWorker


def test_a_burst_worker_on_an_empty_queue_exits_promptly_every_time() -> None:
    for _ in range(30):
        worker = MlpipeWorker([get_queue("tune")], connection=rq_connection())
        started = time.monotonic()
        worked = worker.work(burst=True, with_scheduler=True, logging_level="WARNING")
        took = time.monotonic() - started
        assert not worked
        assert took < 5.0, f"a burst worker with nothing to do took {took:.1f} s to exit"
        assert worker.pubsub_thread is not None and not worker.pubsub_thread.is_alive()
