"""How a cycle travels through RQ: which job follows which, on which queue, with which retry.

    cycle_start_job (cycle queue, Retry(max=2)): catch-up ingest, then enqueues
      -> cycle_build_job x N (train queue, longest first, Retry(max=1): a build abandoned by a killed
         worker runs again)
      -> cycle_rank_job    (cycle queue, Retry(max=2); Dependency(all builds, allow_failure=True))
      -> cycle_drift_job   (cycle queue, Retry(max=2); after rank), which enqueues
           -> cycle_retrain_job x flagged (train queue, Retry(max=1))
           -> cycle_finish_job (cycle queue, Retry(max=2); after every retrain, allow_failure=True)

Every job goes through `run_stage`: it does nothing for a cycle that already finished or was
interrupted, holds the cycle's lease while it works (lock heartbeat, fencing token; a job that lost it
stops before its next write), takes its own job token (a try declared lost writes nothing more: lock.py),
and records its own compute time (the benchmark compares the sum of these with the wall time).

A try whose worker stops beating for JOB_LEASE_SECONDS (killed, or its host cut off) is declared lost by
the next sweep of any live worker (workers.leases, every LOST_JOB_SWEEP_SECONDS): the job's failure callback
bumps its token and records why, and RQ retries it on whichever worker is free (builds and retrains once,
stages twice); lost on every try, a build or retrain is `failed` with the reason (the cycle ends
`partial`), a stage ends the cycle `failed`.

Jobs have fixed ids and are enqueued once, so a retried stage never queues its followers twice; every
stage body is safe to run again after its first try died.

The four stages of the cycle itself (start, rank, drift, finish) record their state in
`results["stages"]`. A stage starts only when the one before it succeeded; a stage job lost or failed on
every try ends the cycle `failed` with the reason (RQ's failure callback, or the next stage's check), so a
cycle never reads `succeeded` after a stage died without completing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from rq import Callback, Retry
from rq.exceptions import NoSuchJobError
from rq.job import Dependency, Job

from app.core.logging import get_logger
from app.core.queues import get_queue
from app.services.cycle import lock as cycle_lock
from app.services.cycle.finish import fail_cycle
from app.services.cycle.rows import LIVE_STATUSES, error_entry, newest, read, update
from app.tables.cycles import Cycle

log = get_logger(__name__)

T = TypeVar("T")
JOBS = "workers.cycle_jobs"
BUILD_TIMEOUT = 3 * 3600
STAGE_TIMEOUT = 3600
RESULT_TTL = 7 * 86400
STAGE_RETRIES = 2
STAGES = ("start", "rank", "drift", "finish")
_AFTER = {"rank": "start", "drift": "rank", "finish": "drift"}
_ON_FAILURE = Callback(f"{JOBS}.stage_job_failed")
_ON_TRAINING_FAILURE = Callback(f"{JOBS}.training_job_failed")
HISTORY_CYCLES = 5  # the recent cycles whose build times order the next cycle's builds
STAGE_LABELS = {"start": "ingest"}  # the label a stage's job records its time (and its token) under


def _queue(kind: str) -> Any:
    return get_queue(kind)


def _job_id(cycle_id: str, label: str) -> str:
    return f"cycle-{cycle_id}-{label}"


def _enqueue_once(kind: str, func: str, *args: Any, job_id: str, **options: Any) -> Job:
    """Enqueue a job unless one with this id exists (a retried stage finds the jobs its first try queued)."""
    queue = _queue(kind)
    try:
        return Job.fetch(job_id, connection=queue.connection)
    except NoSuchJobError:
        return queue.enqueue(func, *args, job_id=job_id, **options)


def _enqueue_stage(stage: str, cycle_id: str, depends_on: Dependency | None = None) -> Job:
    return _enqueue_once(
        "cycle",
        f"{JOBS}.cycle_{stage}_job",
        cycle_id,
        job_id=_job_id(cycle_id, stage),
        job_timeout=STAGE_TIMEOUT,
        result_ttl=RESULT_TTL,
        retry=Retry(max=STAGE_RETRIES),
        on_failure=_ON_FAILURE,
        meta={"stage": stage},
        depends_on=depends_on,
    )


def enqueue_start(cycle_id: str) -> Job:
    return _enqueue_stage("start", cycle_id)


def _enqueue_training(step: str, cycle_id: str, name: str, key: str, timeout: int | None) -> Job:
    """A build or retrain job on the train queue, retried once if its worker is lost (RQ abandoned job)."""
    return _enqueue_once(
        "train",
        f"{JOBS}.cycle_{step}_job",
        cycle_id,
        name,
        job_id=_job_id(cycle_id, key),
        job_timeout=timeout or BUILD_TIMEOUT,
        result_ttl=RESULT_TTL,
        retry=Retry(max=1),
        on_failure=_ON_TRAINING_FAILURE,
        meta={"step": step},
        description=f"cycle {cycle_id[:8]}: {step} {name}",
    )


def enqueue_builds(cycle_id: str, names: list[str], build_timeout: int | None = None) -> list[Job]:
    """One build job per definition, then rank (after all builds, failed ones too) and drift (after rank).

    Builds are queued longest first (`longest_first`); a job's id keeps the definition's declared index,
    so a retried start finds the jobs its first try queued whatever the order.
    """
    order = longest_first(names, last_build_seconds(newest(limit=HISTORY_CYCLES)))
    builds = [_enqueue_training("build", cycle_id, names[i], f"build-{i}", build_timeout) for i in order]
    rank = _enqueue_stage("rank", cycle_id, Dependency(jobs=builds, allow_failure=True))
    _enqueue_stage("drift", cycle_id, Dependency(jobs=[rank], allow_failure=True))
    return builds


def last_build_seconds(cycles: list[Cycle]) -> dict[str, float]:
    """Each definition's most recent recorded build time (seconds), from cycles given newest first."""
    seconds: dict[str, float] = {}
    for cycle in cycles:
        for label, timing in ((cycle.timings or {}).get("jobs") or {}).items():
            step, _, name = label.partition(":")
            if step == "build" and name and name not in seconds and "seconds" in timing:
                seconds[name] = float(timing["seconds"])
    return seconds


def longest_first(names: list[str], seconds: dict[str, float]) -> list[int]:
    """Indices of `names`, the longest expected build first: a greedy longest-processing-time order, so
    the last build to start is a short one and the workers finish together. A definition never built
    yet goes first (its time is unknown); ties keep the declared order."""
    return sorted(range(len(names)), key=lambda i: (-seconds.get(names[i], float("inf")), i))


def enqueue_retrains(cycle_id: str, model_names: list[str], build_timeout: int | None = None) -> None:
    """One retrain job per flagged model, then the finish job after all of them (or at once if none)."""
    retrains = [
        _enqueue_training("retrain", cycle_id, name, f"retrain-{name}", build_timeout) for name in model_names
    ]
    _enqueue_stage("finish", cycle_id, Dependency(jobs=retrains, allow_failure=True) if retrains else None)


def set_stage(cycle_id: str, stage: str) -> None:
    def change(cycle: Cycle) -> None:
        cycle.stage = stage
        stages = dict(cycle.timings.get("stages") or {})
        stages.setdefault(stage, {})["started_at"] = time.time()
        cycle.timings["stages"] = stages

    update(cycle_id, change)


def run_stage(cycle_id: str, label: str, body: Callable[[], T], stage: str | None = None) -> T | None:
    """Run one cycle job's body under the cycle's lease, recording its compute time as `label`.

    Returns None without running the body when the cycle is over, when the job lost the lock (it stops
    before its next write), or when `stage` may not run because the stage before it never completed (the
    cycle then ends failed with that reason).
    """
    cycle = read(cycle_id)
    if cycle.status not in LIVE_STATUSES:
        log.info("cycle job skipped: the cycle is over", cycle_id=cycle_id, job=label)
        return None
    started = time.perf_counter()
    cpu = time.process_time()
    try:
        with cycle_lock.hold(cycle_id, cycle.fence) as lease:
            _own_job(cycle_id, label, lease)
            if stage is not None and not _begin(cycle_id, stage):
                return None
            try:
                result = body()
                if stage is not None:
                    _mark_done(cycle_id, stage)
            finally:
                _record_time(cycle_id, label, started, cpu)
            return result
    except cycle_lock.LockLost as exc:
        log.warning("cycle job stopped: its lock was lost", cycle_id=cycle_id, job=label, reason=exc.message)
        return None


def _own_job(cycle_id: str, label: str, lease: cycle_lock.Lease) -> None:
    """This try takes the job's next token: from now on an older try of the job writes nothing."""
    token: list[int] = []
    update(cycle_id, lambda c: token.append(cycle_lock.bump_job_fence(c, label)))
    lease.job, lease.job_token = label, token[-1]


def _begin(cycle_id: str, stage: str) -> bool:
    """Mark the stage running (one more attempt); False, with the cycle failed, if its predecessor did not
    complete. A stage found already running lost its previous try (the worker died): recorded, then rerun."""
    cycle = read(cycle_id)
    before = _AFTER.get(stage)
    if before is not None and _stage_state(cycle, before) != "succeeded":
        state = _stage_state(cycle, before) or "never ran"
        fail_cycle(cycle_id, stage, f"the {before} stage did not complete ({state}: its job failed or was "
                                    f"lost on every try), so {stage} and what follows did not run")
        return False

    def begin(c: Cycle) -> None:
        stages = dict(c.results.get("stages") or {})
        entry = dict(stages.get(stage) or {})
        if entry.get("state") == "running":
            c.errors.append(error_entry(stage, f"the {stage} job was lost mid-way (worker gone); rerun",
                                        level="warning"))
        entry.update(state="running", attempts=int(entry.get("attempts", 0)) + 1)
        stages[stage] = entry
        c.results["stages"] = stages

    update(cycle_id, begin)
    return True


def _stage_state(cycle: Cycle, stage: str) -> str | None:
    return (cycle.results.get("stages") or {}).get(stage, {}).get("state")


def _mark_done(cycle_id: str, stage: str) -> None:
    if read(cycle_id).status in LIVE_STATUSES:  # else the body itself ended the cycle (finish, a failure)
        update(cycle_id, lambda c: stage_succeeded(c, stage))


def _record_time(cycle_id: str, label: str, started: float, cpu: float) -> None:
    seconds = round(time.perf_counter() - started, 4)
    cpu_seconds = round(time.process_time() - cpu, 4)

    def change(cycle: Cycle) -> None:
        jobs = dict(cycle.timings.get("jobs") or {})
        jobs[label] = {"seconds": seconds, "cpu_seconds": cpu_seconds, "ended_at": time.time()}
        cycle.timings["jobs"] = jobs

    try:
        update(cycle_id, change)
    except Exception:  # noqa: BLE001 - timing is informative (and a job that lost its lock writes nothing)
        log.warning("could not record a job's timing", cycle_id=cycle_id, job=label)


def stage_succeeded(cycle: Cycle, stage: str) -> None:
    """Inside a stage's last write: the stage completed (so a retry, or the next stage, knows)."""
    stages = dict(cycle.results.get("stages") or {})
    stages[stage] = {**dict(stages.get(stage) or {}), "state": "succeeded"}
    cycle.results["stages"] = stages


def stage_job_failed(cycle_id: str, stage: str, will_retry: bool, error: str) -> None:
    """RQ's failure callback of a stage job (it raised, timed out, or its worker died or was lost)."""
    cycle = read(cycle_id)
    if cycle.status not in LIVE_STATUSES or _stage_state(cycle, stage) == "succeeded":
        return
    _fence_out(cycle_id, STAGE_LABELS.get(stage, stage))
    if will_retry:
        update(cycle_id, lambda c: c.errors.append(
            error_entry(stage, f"the {stage} job failed ({error}); it is retried", level="warning")))
        return
    fail_cycle(cycle_id, stage, f"the {stage} job failed or was lost on each of its {STAGE_RETRIES + 1} "
                                f"tries (last: {error}); the stages after it did not run")


def _fence_out(cycle_id: str, label: str) -> None:
    """A try of `label` failed or was declared lost: bump the job's token, so that try (if its worker is
    only cut off and comes back) writes nothing more."""
    update(cycle_id, lambda c: cycle_lock.bump_job_fence(c, label))


def training_job_failed(cycle_id: str, step: str, name: str, will_retry: bool, error: str) -> None:
    """RQ's failure callback of a build or retrain job: it timed out, or its worker was lost (a sweep found
    its lease lapsed: workers.leases). The try is fenced out; the reason is recorded; the model is marked
    `failed` when no try is left (the cycle then ends `partial`)."""
    if read(cycle_id).status not in LIVE_STATUSES:
        return
    key = name if step == "build" else f"retrain:{name}"  # the progress entry of the job

    def record(cycle: Cycle) -> None:
        cycle_lock.bump_job_fence(cycle, f"{step}:{name}")
        entry = dict(cycle.progress.get(key) or {})
        if entry.get("state") in ("succeeded", "failed"):
            return  # the try reported before it was lost: nothing to redo
        if will_retry:
            cycle.progress[key] = {**entry, "state": "queued", "retried_because": error}
            cycle.errors.append(error_entry(step, f"{error}; the {step} is retried", model=key,
                                            level="warning"))
            return
        message = f"{error}; no try left"
        cycle.progress[key] = {**entry, "state": "failed", "error": message}
        cycle.errors.append(error_entry(step, message, model=key))

    update(cycle_id, record)
