"""How a cycle travels through RQ: which job follows which, on which queue, with which retry.

    cycle_start_job (cycle queue): catch-up ingest, then enqueues
      -> cycle_build_job x N (train queue, Retry(max=1): a build abandoned by a killed worker runs again)
      -> cycle_rank_job    (cycle queue; Dependency(all builds, allow_failure=True))
      -> cycle_drift_job   (cycle queue; after rank), which enqueues
           -> cycle_retrain_job x flagged (train queue, Retry(max=1))
           -> cycle_finish_job (after every retrain, allow_failure=True; run inline when none)

Every job goes through `run_stage`: it does nothing for a cycle that already finished or was
interrupted, keeps the cycle's Redis lock alive while it works, and records its own compute time (the
benchmark compares the sum of these with the wall time).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from rq import Retry
from rq.job import Dependency, Job

from app.core.logging import get_logger
from app.core.queues import get_queue
from app.services.cycle import lock as cycle_lock
from app.services.cycle.recovery import is_live
from app.services.cycle.rows import update
from app.tables.cycles import Cycle

log = get_logger(__name__)

T = TypeVar("T")
JOBS = "workers.cycle_jobs"
BUILD_TIMEOUT = 3 * 3600
STAGE_TIMEOUT = 3600
RESULT_TTL = 7 * 86400


def _queue(kind: str) -> Any:
    return get_queue(kind)


def _job_id(cycle_id: str, label: str) -> str:
    return f"cycle-{cycle_id}-{label}"


def enqueue_start(cycle_id: str) -> Job:
    return _queue("cycle").enqueue(
        f"{JOBS}.cycle_start_job",
        cycle_id,
        job_id=_job_id(cycle_id, "start"),
        job_timeout=STAGE_TIMEOUT,
        result_ttl=RESULT_TTL,
        retry=Retry(max=1),
    )


def _enqueue_training(step: str, cycle_id: str, name: str, key: str, timeout: int | None) -> Job:
    """A build or retrain job on the train queue, retried once if its worker is lost (RQ abandoned job)."""
    return _queue("train").enqueue(
        f"{JOBS}.cycle_{step}_job",
        cycle_id,
        name,
        job_id=_job_id(cycle_id, key),
        job_timeout=timeout or BUILD_TIMEOUT,
        result_ttl=RESULT_TTL,
        retry=Retry(max=1),
        description=f"cycle {cycle_id[:8]}: {step} {name}",
    )


def enqueue_builds(cycle_id: str, names: list[str], build_timeout: int | None = None) -> list[Job]:
    """One build job per definition, then rank (after all builds, failed ones too) and drift (after rank)."""
    builds = [
        _enqueue_training("build", cycle_id, name, f"build-{i}", build_timeout)
        for i, name in enumerate(names)
    ]
    cycle = _queue("cycle")
    rank = cycle.enqueue(
        f"{JOBS}.cycle_rank_job",
        cycle_id,
        job_id=_job_id(cycle_id, "rank"),
        job_timeout=STAGE_TIMEOUT,
        result_ttl=RESULT_TTL,
        depends_on=Dependency(jobs=builds, allow_failure=True),
    )
    cycle.enqueue(
        f"{JOBS}.cycle_drift_job",
        cycle_id,
        job_id=_job_id(cycle_id, "drift"),
        job_timeout=STAGE_TIMEOUT,
        result_ttl=RESULT_TTL,
        depends_on=Dependency(jobs=[rank], allow_failure=True),
    )
    return builds


def enqueue_retrains(cycle_id: str, model_names: list[str], build_timeout: int | None = None) -> None:
    """One retrain job per flagged model, then the finish job after all of them (or at once if none)."""
    retrains = [
        _enqueue_training("retrain", cycle_id, name, f"retrain-{name}", build_timeout) for name in model_names
    ]
    _queue("cycle").enqueue(
        f"{JOBS}.cycle_finish_job",
        cycle_id,
        job_id=_job_id(cycle_id, "finish"),
        job_timeout=STAGE_TIMEOUT,
        result_ttl=RESULT_TTL,
        depends_on=Dependency(jobs=retrains, allow_failure=True) if retrains else None,
    )


def set_stage(cycle_id: str, stage: str) -> None:
    def change(cycle: Cycle) -> None:
        cycle.stage = stage
        stages = dict(cycle.timings.get("stages") or {})
        stages.setdefault(stage, {})["started_at"] = time.time()
        cycle.timings["stages"] = stages

    update(cycle_id, change)


def run_stage(cycle_id: str, label: str, body: Callable[[], T]) -> T | None:
    """Run one cycle job's body under the lock heartbeat, recording its compute time as `label`."""
    if not is_live(cycle_id):
        log.info("cycle job skipped: the cycle is over", cycle_id=cycle_id, job=label)
        return None
    started = time.perf_counter()
    cpu = time.process_time()
    try:
        with cycle_lock.heartbeat(cycle_id):
            return body()
    finally:
        seconds = round(time.perf_counter() - started, 4)
        cpu_seconds = round(time.process_time() - cpu, 4)

        def change(cycle: Cycle) -> None:
            jobs = dict(cycle.timings.get("jobs") or {})
            jobs[label] = {"seconds": seconds, "cpu_seconds": cpu_seconds, "ended_at": time.time()}
            cycle.timings["jobs"] = jobs

        try:
            update(cycle_id, change)
        except Exception:  # noqa: BLE001 - timing is informative; never turn a result into a failure
            log.warning("could not record a job's timing", cycle_id=cycle_id, job=label)
