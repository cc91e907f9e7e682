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


def fail_cycle(cycle_id: str, stage: str, message: str) -> Cycle:
    def change(cycle: Cycle) -> None:
        cycle.status = "failed"
        cycle.stage = "done"
        cycle.finished_ts = now()
        cycle.errors.append(error_entry(stage, message))
        cycle.timings["total"] = round(time.time() - float(cycle.timings.get("started_at", time.time())), 3)

    cycle = update(cycle_id, change)
    cycle_lock.release(cycle_id)
    _record_metric("failed", cycle.timings.get("total"))
    log.error("cycle failed", cycle_id=cycle_id, stage=stage, reason=message)
    return cycle


def finish_cycle(cycle_id: str) -> Cycle:
    """Close the cycle: `partial` when any model or stage failed, else `succeeded`; release the lock."""

    def change(cycle: Cycle) -> None:
        if cycle.status in FINISHED_STATUSES:
            return
        close_lost_jobs(cycle)
        failed = [name for name, p in cycle.progress.items() if p.get("state") == "failed"]
        errors = [e for e in cycle.errors if e.get("level") == "error"]
        cycle.status = "partial" if failed or errors else "succeeded"
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


