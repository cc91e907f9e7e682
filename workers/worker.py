"""The RQ worker `mlpipe worker` runs: RQ's forking Worker, plus what RQ lacks with workers on many hosts.

- **A job lease.** A running job's RQ heartbeat (its StartedJobRegistry entry) lasts `JOB_LEASE_SECONDS`
  and the worker's main process renews it every sixth of that. RQ's default is the job's monitoring interval
  plus 60 s, and RQ's maintenance looks for lapsed entries every 10 minutes and only between jobs (an idle
  worker waits up to ~7 minutes in a blocking pop), so a build held by a worker whose link was cut stayed
  `started` for many minutes.
- **A sweep for lost jobs**, every `LOST_JOB_SWEEP_SECONDS`, by every worker, idle (its blocking pop wakes
  twice as often) or busy (after a beat of its own job): `workers.leases.sweep`, i.e. RQ's own
  `StartedJobRegistry.cleanup`, which runs the job's failure callback and retries it (or fails it and
  releases its dependents). A lost job is thus requeued at most L + S + max(S / 2, L / 6) seconds after its
  worker's last beat (85 s by default), while any worker of its queue is alive.
- **A try declared lost reports nothing to RQ.** When such a worker comes back, its next beat sees its try
  in the declared-lost set: it kills its work horse and records no failure (the job is already retried);
  a horse whose worker is gone exits before reporting. The application's own writes are fenced in the
  database besides (app.services.cycle.lock: the job's fencing token).
- **The horse inherits a frozen heap** (`gc.freeze()` before each fork): its garbage collector no longer
  walks, and copies, every object of the parent (a trial job took 0.5 s instead of 0.23 s).
- When a work horse dies (SIGKILL, out of memory) while its worker survives, RQ records the failure and
  retries the job if it can, but runs no failure callback. Our stage jobs rely on that callback to end the
  cycle `failed` with the reason once their retries are spent, so the worker runs it here in that case.
- **It leaves promptly when it stops.** RQ's teardown sent UNSUBSCRIBE to its pubsub channel before
  stopping the listener thread: when the thread read the confirmation first, it found itself subscribed to
  nothing with its run flag still set and waited for a subscription for RQ's `sleep_time` (60 s), while
  redis-py (>= 8) joins that thread without a bound in `stop()`. A burst worker so printed "done, quitting"
  and exited a minute later (1 exit in 6 on an empty queue). Here the flag is set first, the
  confirmation wakes the thread and it ends; the join is bounded all the same.
"""

from __future__ import annotations

import gc
import logging
import math
import os
import time
from typing import Any

from rq import SimpleWorker, Worker
from rq.exceptions import AbandonedJobError
from rq.worker import BaseWorker

from app.core.config import get_settings
from workers import leases

PUBSUB_JOIN_SECONDS = 2.0  # how long leaving waits for the pubsub thread (a daemon: it cannot hold the exit)


class PromptExit(BaseWorker):
    """Leaving without RQ's minute-long wait on its pubsub thread (see the module docstring)."""

    def unsubscribe(self) -> None:
        thread, pubsub = self.pubsub_thread, self.pubsub
        if thread is None or pubsub is None:
            return
        self.log.info("Worker %s: unsubscribing from channel %s", self.name, self.pubsub_channel_name)
        try:
            thread.stop(timeout=0)  # the run flag only: the thread ends on its next wake-up
        except TypeError:  # a redis-py whose stop() takes no bound never waited in it
            thread.stop()
        try:
            pubsub.unsubscribe()  # its confirmation wakes the thread's read
        except Exception:  # noqa: BLE001 - Redis gone: the connection is closed below either way
            self.log.warning("Worker %s: UNSUBSCRIBE failed", self.name, exc_info=True)
        thread.join(timeout=PUBSUB_JOIN_SECONDS)
        pubsub.close()


class PromptSimpleWorker(PromptExit, SimpleWorker):
    """RQ's in-process worker (no work horse), leaving promptly: for tests and benchmarks."""


class MlpipeWorker(PromptExit, Worker):
    def __init__(
        self, *args: Any, lease_seconds: int | None = None, sweep_seconds: float | None = None, **kwargs: Any
    ) -> None:
        settings = get_settings()
        self.lease_seconds = int(lease_seconds or settings.job_lease_seconds)
        self.sweep_seconds = float(sweep_seconds or settings.lost_job_sweep_seconds)
        self._last_sweep = float("-inf")
        self._lost_try: str | None = None  # `job_id:execution_id` of this worker's try declared lost
        kwargs.setdefault("job_monitoring_interval", max(1, self.lease_seconds // 6))
        super().__init__(*args, **kwargs)

    # ---- the lease -------------------------------------------------------------------------------------
    def get_heartbeat_ttl(self, job: Any, working_time: float = 0.0) -> int:
        return self.lease_seconds

    @property
    def dequeue_timeout(self) -> int:
        """An idle worker's blocking pop wakes twice a sweep interval, so it sweeps at most S / 2 late."""
        return max(1, min(super().dequeue_timeout, math.floor(self.sweep_seconds / 2)))

    # ---- the sweep -------------------------------------------------------------------------------------
    def _sweep_due(self) -> bool:
        return time.monotonic() - self._last_sweep >= self.sweep_seconds

    def sweep_lost_jobs(self, wait: float = 0.0) -> None:
        self._last_sweep = time.monotonic()
        try:
            lost = leases.sweep(self.queues, self.connection, wait=wait)
        except Exception:  # noqa: BLE001 - Redis hiccupped: the next sweep tries again
            self.log.warning("Worker %s: sweep for lost jobs failed", self.name, exc_info=True)
            return
        for entry in lost:
            self.log.warning("Worker %s: job try %s declared lost (no beat for %s s)", self.name, entry,
                             self.lease_seconds)

    @property
    def should_run_maintenance_tasks(self) -> bool:
        return self._sweep_due() or super().should_run_maintenance_tasks

    def run_maintenance_tasks(self) -> None:
        if super().should_run_maintenance_tasks:
            super().run_maintenance_tasks()  # its clean_registries sweeps first
        else:
            self.sweep_lost_jobs()

    def clean_registries(self) -> None:
        """RQ's maintenance, after a sweep that records what it declares lost (RQ's own cleanup of the
        started registries then finds nothing left to requeue a second time)."""
        self.sweep_lost_jobs(wait=5.0)
        super().clean_registries()

    # ---- a busy worker: beats, and what a beat learns --------------------------------------------------
    def execute_job(self, job: Any, queue: Any) -> None:
        self._lost_try = None
        self._warm(job)
        super().execute_job(job, queue)

    def _warm(self, job: Any) -> None:
        """What a job's horse should inherit rather than load: a tuning study's train window (each trial job
        read it again otherwise, 10-25 ms of a trial of 0.3 s). Never in the way of the job itself."""
        if job.func_name != "workers.tuning_jobs.tuning_trial_job":
            return
        try:
            from workers.tuning_jobs import warm_trial

            warm_trial(*job.args)
        except Exception:  # noqa: BLE001 - the horse loads it itself
            self.log.warning("Worker %s: could not warm job %s", self.name, job.id, exc_info=True)

    def maintain_heartbeats(self, job: Any, execution: Any) -> None:
        super().maintain_heartbeats(job, execution)
        if leases.declared_lost(self.connection, execution):
            self._lost_try = execution.composite_key
            self.log.warning("Worker %s: this try of job %s was declared lost (its lease lapsed) and the job "
                             "retried elsewhere; stopping its work horse", self.name, job.id)
            self.kill_horse()
            return
        if self._sweep_due():
            self.sweep_lost_jobs()

    def _is_lost_try(self, job: Any) -> bool:
        return self._lost_try is not None and self._lost_try.split(":", 1)[0] == job.id

    def handle_job_failure(self, job: Any, queue: Any, started_job_registry: Any = None, exc_string: str = "",
                           execution: Any = None) -> None:
        if self._is_lost_try(job):
            return  # killed here because declared lost: the sweep already retried or failed the job
        super().handle_job_failure(job, queue, started_job_registry, exc_string, execution)

    # ---- the work horse ----------------------------------------------------------------------------------
    def fork_work_horse(self, job: Any, queue: Any) -> None:
        """Freeze the main process's objects out of the cyclic GC before forking (Python's `gc.freeze`
        advice for fork without exec): else the horse's first full collection walks every object it
        inherited (the ML stack's imports, the warmed window), copying each page it touches. Measured on a
        trial job: 0.51 s -> 0.23 s a trial. The freeze only spares them the cyclic collector; reference
        counting still frees them, and a collection first keeps today's cyclic garbage from being frozen."""
        gc.collect()
        gc.freeze()
        super().fork_work_horse(job, queue)

    def handle_execution_ended(self, job: Any, queue: Any, heartbeat_ttl: int) -> None:
        """The horse's first step of reporting: a try declared lost meanwhile exits without reporting."""
        if self._is_horse and leases.declared_lost(self.connection, self.execution):
            self.log.warning("Worker %s: job %s ended after this try was declared lost; not reported",
                             self.name, job.id)
            logging.shutdown()
            os._exit(0)
        super().handle_execution_ended(job, queue, heartbeat_ttl)

    def handle_work_horse_killed(self, job: Any, retpid: int, ret_val: int, rusage: Any) -> None:
        if self._is_lost_try(job):
            return
        super().handle_work_horse_killed(job, retpid, ret_val, rusage)
        if job.failure_callback is None or (job.retries_left or 0) > 0:
            return  # RQ retries it; the callback of the last try decides
        error = AbandonedJobError(f"its work horse died (waitpid status {ret_val})")
        try:
            job.failure_callback(job, self.connection, AbandonedJobError, error, None)
        except Exception:  # noqa: BLE001 - a failing callback must not take the worker down
            self.log.exception("failure callback of job %s raised", job.id)
