"""Thin RQ jobs of the model cycle: a cycle id (and a name) in, one service call, a small result out.

The order of the jobs and their retries are in `app.services.cycle.flow`; each body runs under
`run_stage` (skipped once the cycle is over, lock kept alive, time recorded).
"""

from __future__ import annotations

from typing import Any

from rq.exceptions import AbandonedJobError

from app.core.config import get_settings
from app.services.cycle import build, drift, finish, rank, retrain, start
from app.services.cycle.flow import run_stage
from app.services.cycle.flow import stage_job_failed as _stage_failed
from app.services.cycle.flow import training_job_failed as _training_failed


def cycle_cron_job() -> str | None:
    """The 12-hour cron entry: start a cycle unless one is running (then this tick is skipped)."""
    return start.start_from_cron()


def cycle_start_job(cycle_id: str) -> list[str] | None:
    """Catch-up ingest, then enqueue one build per model definition, the rank and the drift jobs."""
    return run_stage(cycle_id, "ingest", lambda: start.start(cycle_id), stage="start")


def cycle_build_job(cycle_id: str, definition: str) -> dict[str, Any] | None:
    """Train, validate and save one model definition of the cycle (a `candidate`, or `failed`)."""
    return run_stage(cycle_id, f"build:{definition}", lambda: build.build(cycle_id, definition))


def cycle_rank_job(cycle_id: str) -> dict[str, Any] | None:
    """Apply DESIGN 6 to every candidate and active model, after all builds (failed ones too)."""
    return run_stage(cycle_id, "rank", lambda: rank.rank(cycle_id), stage="rank")


def cycle_drift_job(cycle_id: str) -> list[str] | None:
    """Evaluate every active model on its unseen newest 24 h; enqueue retrains of the flagged, then finish."""
    return run_stage(cycle_id, "drift", lambda: drift.drift_stage(cycle_id), stage="drift")


def cycle_retrain_job(cycle_id: str, model_name: str) -> dict[str, Any] | None:
    """Retrain one flagged model as version n+1 and decide on the same fresh holdout."""
    label = f"retrain:{model_name}"
    return run_stage(cycle_id, label, lambda: retrain.retrain_or_record(cycle_id, model_name))


def cycle_finish_job(cycle_id: str) -> str | None:
    """Close the cycle (succeeded or partial) and release its lock."""
    return run_stage(cycle_id, "finish", lambda: finish.finish_cycle(cycle_id).status, stage="finish")


def stage_job_failed(job: Any, _connection: Any, exc_type: Any, exc: Any, _traceback: Any) -> None:
    """RQ failure callback of the start, rank, drift and finish jobs (raised, timed out, or worker died)."""
    _stage_failed(job.args[0], job.meta.get("stage", "?"), bool(job.retries_left), _reason(exc_type, exc))


def training_job_failed(job: Any, _connection: Any, exc_type: Any, exc: Any, _traceback: Any) -> None:
    """RQ failure callback of the build and retrain jobs (timed out, or declared lost by a sweep)."""
    cycle_id, name = job.args[0], job.args[1]
    _training_failed(cycle_id, job.meta.get("step", "build"), name, bool(job.retries_left),
                     _reason(exc_type, exc))


def _reason(exc_type: Any, exc: Any) -> str:
    if exc_type is AbandonedJobError and not str(exc):  # RQ's sweep of lapsed leases (workers.leases)
        return (f"its worker stopped beating for {get_settings().job_lease_seconds} s (killed, or its host "
                "cut off): declared lost")
    return f"{getattr(exc_type, '__name__', exc_type)}: {exc}"[:300]
