"""The end of a cycle: `finish_cycle` (succeeded or partial) after the last stage, `fail_cycle` on a fatal
error; both release the lock and count the outcome."""

from __future__ import annotations

import time

from app.core.logging import get_logger
from app.core.metrics import record_cycle
from app.services.cycle import lock as cycle_lock
from app.services.cycle.rows import close_lost_jobs, error_entry, now, update
from app.tables.cycles import FINISHED_STATUSES, Cycle

log = get_logger(__name__)


def _ended_here(cycle_id: str) -> None:
    lease = cycle_lock.current_lease(cycle_id)
    if lease is not None:
        lease.ended = True


def fail_cycle(cycle_id: str, stage: str, message: str) -> Cycle:
    """End a live cycle `failed` with the reason, and release its lock (a finished cycle is left as it is)."""

    failed_now: list[bool] = []

    def change(cycle: Cycle) -> None:
        if cycle.status in FINISHED_STATUSES:
            return
        _ended_here(cycle_id)
        failed_now.append(True)
        cycle.status = "failed"
        cycle.stage = "done"
        cycle.finished_ts = now()
        cycle.errors.append(error_entry(stage, message))
        cycle.timings["total"] = round(time.time() - float(cycle.timings.get("started_at", time.time())), 3)

    cycle = update(cycle_id, change)
    cycle_lock.release(cycle_id)
    if failed_now:
        _record_metric("failed", cycle.timings.get("total"))
        log.error("cycle failed", cycle_id=cycle_id, stage=stage, reason=message)
    return cycle


def finish_cycle(cycle_id: str) -> Cycle:
    """Close the cycle: `partial` when any model or stage failed, else `succeeded`; release the lock."""

    def change(cycle: Cycle) -> None:
        if cycle.status in FINISHED_STATUSES:
            return
        _ended_here(cycle_id)
        close_lost_jobs(cycle)
        failed = [name for name, p in cycle.progress.items() if p.get("state") == "failed"]
        errors = [e for e in cycle.errors if e.get("level") == "error"]
        stages = cycle.results.get("stages") or {}
        unfinished = [s for s in ("start", "rank", "drift") if stages and stages.get(s, {}).get("state")
                      != "succeeded"]
        for stage in unfinished:  # belt and braces: a stage that never completed is never "succeeded"
            errors.append(error_entry(stage, f"the {stage} stage did not complete"))
            cycle.errors.append(errors[-1])
        cycle.status = "partial" if failed or errors else "succeeded"
        if "finish" in stages:
            stages["finish"] = {**stages["finish"], "state": "succeeded"}
            cycle.results["stages"] = dict(stages)
        cycle.stage = "done"
        cycle.finished_ts = now()
        started = float(cycle.timings.get("started_at", time.time()))
        cycle.timings["total"] = round(time.time() - started, 3)
        cycle.results["failed_models"] = failed

    cycle = update(cycle_id, change)
    cycle_lock.release(cycle_id)
    _record_metric(cycle.status, cycle.timings.get("total"))
    log.info("cycle finished", cycle_id=cycle_id, status=cycle.status)
    return cycle


def _record_metric(outcome: str, seconds: float | None) -> None:
    try:
        record_cycle(outcome, seconds)
    except Exception:  # noqa: BLE001 - a metrics hiccup never changes a cycle's outcome
        log.warning("could not record the cycle metric", outcome=outcome)


