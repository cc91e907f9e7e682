"""Thin RQ jobs of the model cycle: a cycle id (and a name) in, one service call, a small result out.

The order of the jobs and their retries are in `app.services.cycle_flow`.
"""

from __future__ import annotations

from typing import Any


def cycle_cron_job() -> str | None:
    """The 12-hour cron entry: start a cycle unless one is running (then this tick is skipped)."""
    from app.core.logging import get_logger
    from app.services.cycles import CycleRunning, start_cycle

    try:
        return start_cycle("cron").id
    except CycleRunning as exc:
        get_logger(__name__).warning("cron cycle skipped: one is running", running=exc.running_id)
        return None


def cycle_start_job(cycle_id: str) -> list[str] | None:
    """Catch-up ingest, then enqueue one build per model definition, the rank and the drift jobs."""
    from app.services.cycle_build import start
    from app.services.cycle_flow import run_stage

    return run_stage(cycle_id, "ingest", lambda: start(cycle_id))


def cycle_build_job(cycle_id: str, definition: str) -> dict[str, Any] | None:
    """Train, validate and save one model definition of the cycle (a `candidate`, or `failed`)."""
    from app.services.cycle_build import build
    from app.services.cycle_flow import run_stage

    return run_stage(cycle_id, f"build:{definition}", lambda: build(cycle_id, definition))


def cycle_rank_job(cycle_id: str) -> dict[str, Any] | None:
    """Apply DESIGN 6 to every candidate and active model, after all builds (failed ones too)."""
    from app.services.cycle_flow import run_stage
    from app.services.cycle_rank import rank

    return run_stage(cycle_id, "rank", lambda: rank(cycle_id))


def cycle_drift_job(cycle_id: str) -> list[str] | None:
    """Evaluate every active model on its unseen newest 24 h; enqueue retrains of the flagged, then finish."""
    from app.services.cycle_drift import evaluate_drift
    from app.services.cycle_flow import enqueue_retrains, run_stage, set_stage
    from app.services.cycles import get_cycle

    def body() -> list[str]:
        flagged = evaluate_drift(cycle_id)
        set_stage(cycle_id, "retrain" if flagged else "finish")
        enqueue_retrains(cycle_id, flagged, get_cycle(cycle_id).options.get("build_timeout"))
        return flagged

    return run_stage(cycle_id, "drift", body)


def cycle_retrain_job(cycle_id: str, model_name: str) -> dict[str, Any] | None:
    """Retrain one flagged model as version n+1 and decide on the same fresh holdout."""
    from app.services.cycle_drift import retrain_or_record
    from app.services.cycle_flow import run_stage

    return run_stage(cycle_id, f"retrain:{model_name}", lambda: retrain_or_record(cycle_id, model_name))


def cycle_finish_job(cycle_id: str) -> str | None:
    """Close the cycle (succeeded or partial) and release its lock."""
    from app.services.cycle_flow import run_stage
    from app.services.cycles import finish_cycle

    return run_stage(cycle_id, "finish", lambda: finish_cycle(cycle_id).status)
