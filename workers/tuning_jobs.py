"""Thin RQ jobs of tuning studies (DESIGN 10): primitive arguments in, one service call."""

from __future__ import annotations

from typing import Any


def tuning_trial_job(study_id: str, number: int) -> dict[str, Any]:
    """One trial of the study (if its budget allows); the last trial job finishes the study."""
    from rq import get_current_job

    from app.services.tuning.trials import run_trial

    job = get_current_job()
    return run_trial(study_id, number, worker=getattr(job, "worker_name", None))


def warm_trial(study_id: str, number: int) -> None:
    """In the worker's main process, before it forks the work horse of a trial job: Optuna's storage (built
    once per worker, 80-220 ms) with the study's finished trials (app.services.tuning.storage.cached), and
    the study's train window into memory (from this host's file, else the database), which every horse it
    forks then inherits."""
    from app.services.tuning import storage
    from app.services.tuning.studies import get_study
    from app.services.tuning.trials import shared_window

    study = get_study(study_id)
    if study.status in ("queued", "running"):
        storage.load(study.optuna_name).get_trials(deepcopy=False)
        shared_window(study)
