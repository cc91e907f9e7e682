"""Job leases across hosts: RQ's own abandoned-job handling, run often enough to bound how long a job of a
lost worker stays `started`, and a record of the tries it declared lost.

A running job's lease is its execution's entry in RQ's StartedJobRegistry, scored by the time its worker's
next beat is due (see `MlpipeWorker.get_heartbeat_ttl`). `sweep` runs RQ's `StartedJobRegistry.cleanup` on
each queue: every entry past its time is a job whose worker stopped beating; RQ calls the job's failure
callback and retries it if it has retries left, else fails it and releases its dependents. Before the
cleanup, the expired entries are copied to a Redis set (and those renewed at the last moment taken out again
after it), so the worker of such a try (its link back, or only its horse still alive) learns it was declared
lost and reports nothing (`declared_lost`).

One sweep at a time across all workers (redis-py's lock), so a lost job is never requeued twice.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from redis import Redis
from rq import Queue
from rq.executions import Execution

from app.core.config import get_settings

LOST_TTL = 2 * 86400  # seconds a declared-lost try is remembered (longer than any job's timeout)


def lost_key() -> str:
    return f"{get_settings().queue_prefix}:lost-executions"


def sweep_lock_key() -> str:
    return f"{get_settings().queue_prefix}:lost-sweep"


def sweep(queues: Iterable[Queue], connection: Redis, *, wait: float = 0.0) -> list[str]:
    """Declare lost every running try whose lease lapsed, and let RQ retry or fail its job.

    Returns the executions (`job_id:execution_id`) declared lost. Skips (returns []) when another worker is
    sweeping and `wait` seconds pass; the lock expires by itself if its holder is cut off mid-sweep.
    """
    lock = connection.lock(sweep_lock_key(), timeout=10, blocking_timeout=wait)  # a sweep takes ms
    if not lock.acquire(blocking=wait > 0):
        return []
    lost: list[str] = []
    try:
        for queue in queues:
            registry = queue.started_job_registry
            cutoff = time.time()
            expired = [e.decode() if isinstance(e, bytes) else e
                       for e in connection.zrangebyscore(registry.key, 0, cutoff)]
            if not expired:
                continue
            with connection.pipeline() as pipe:
                pipe.sadd(lost_key(), *expired)
                pipe.expire(lost_key(), LOST_TTL)
                pipe.execute()
            registry.cleanup(cutoff)
            # an entry its worker renewed at the last moment was not cleaned up: that try is not lost
            renewed = [e for e in expired if connection.zscore(registry.key, e) is not None]
            if renewed:
                connection.srem(lost_key(), *renewed)
            lost.extend(e for e in expired if e not in renewed)
    finally:
        try:
            lock.release()
        except Exception:  # noqa: BLE001 - expired meanwhile: another sweep may run, which is harmless
            pass
    return lost


def declared_lost(connection: Redis, execution: Execution | None) -> bool:
    """Whether a sweep declared this try lost (its job was retried or failed elsewhere)."""
    return execution is not None and bool(connection.sismember(lost_key(), execution.composite_key))
