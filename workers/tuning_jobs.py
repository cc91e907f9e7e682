"""Thin RQ jobs of tuning studies (DESIGN 10): primitive arguments in, one service call."""

from __future__ import annotations

from typing import Any


def tuning_trial_job(study_id: str, number: int) -> dict[str, Any]:
    """One trial of the study (if its budget allows); the last trial job finishes the study."""
    from rq import get_current_job

    from app.services.tuning.trials import run_trial

    job = get_current_job()
    return run_trial(study_id, number, worker=getattr(job, "worker_name", None))
