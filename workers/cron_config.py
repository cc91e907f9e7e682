"""RQ CronScheduler config: `mlpipe scheduler` (or `rq cron workers.cron_config`) loads this module.

RQ evaluates cron strings in the scheduler's local time zone (containers run in UTC).
"""

from __future__ import annotations

from rq import cron

from app.core.config import get_settings
from app.core.queues import INGEST, queue_name
from workers.jobs import ingest_tick_job

settings = get_settings()

# A tick that no worker picks up within two minutes is stale: the next one covers the same candles.
cron.register(
    ingest_tick_job,
    queue_name=queue_name(INGEST),
    cron=settings.ingest_cron,
    job_timeout=300,
    ttl=120,
    result_ttl=3600,
)
from workers.cycle_jobs import cycle_cron_job  # noqa: E402 - the cycle's registration (issue 4)

cron.register(
    cycle_cron_job, queue_name=queue_name("cycle"), cron=settings.cycle_cron, job_timeout=300, ttl=3600
)

from app.core.queues import DEFAULT  # noqa: E402
from workers.jobs import drain_predictions_job, score_predictions_job  # noqa: E402 - prediction log (issue 5)

cron.register(drain_predictions_job, queue_name=queue_name(DEFAULT), cron="* * * * *", job_timeout=120,
              ttl=120)
cron.register(score_predictions_job, queue_name=queue_name(DEFAULT), cron="*/5 * * * *", job_timeout=600,
              ttl=600)

from workers.jobs import sweep_store_job  # noqa: E402 - store upkeep (issue 11)

cron.register(sweep_store_job, queue_name=queue_name(DEFAULT), cron="17 * * * *", job_timeout=600, ttl=3600)
