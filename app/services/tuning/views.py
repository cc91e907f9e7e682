"""A study as the API, the CLI and the dashboard show it (the shape of app/services/dashboard/tuning.py):
its row, its trials from Optuna's storage (state, value, params, times), the best so far and the result."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from optuna.trial import FrozenTrial, TrialState

from app.core.logging import get_logger
from app.ml.tuning import OBJECTIVE
from app.services.tuning import storage
from app.services.tuning.studies import get_study, list_study_rows
from app.tables.tuning import TuningStudy

log = get_logger(__name__)

_STATES = {TrialState.COMPLETE: "complete", TrialState.PRUNED: "pruned", TrialState.FAIL: "fail",
           TrialState.RUNNING: "running", TrialState.WAITING: "waiting"}


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def trial_view(trial: FrozenTrial) -> dict[str, Any]:
    return {"number": trial.number, "state": _STATES.get(trial.state, trial.state.name.lower()),
            "value": trial.value, "started_ts": _iso(trial.datetime_start),
            "finished_ts": _iso(trial.datetime_complete),
            "params": dict(trial.params or trial.system_attrs.get("fixed_params") or {}),
            "current": bool(trial.user_attrs.get("current")),
            "features": (trial.user_attrs.get("definition") or {}).get("features"),
            "seconds": storage.run_record(trial).get("seconds"),
            "fit_seconds": storage.run_record(trial).get("fit_seconds")}


def _trials(row: TuningStudy) -> list[FrozenTrial]:
    try:
        return storage.load(row.optuna_name).get_trials(deepcopy=False)
    except KeyError:  # the Optuna study is gone (its tables were dropped)
        return []


def study_view(row: TuningStudy) -> dict[str, Any]:
    """The study in the documented shape, plus `best_so_far` (the objective after each trial)."""
    trials = [trial_view(t) for t in _trials(row)]
    best: float | None = None
    best_trial = None
    best_so_far: list[float | None] = []
    for trial in trials:
        value = trial["value"]
        if trial["state"] == "complete" and value is not None and (best is None or value > best):
            best, best_trial = float(trial["value"]), trial
        best_so_far.append(best)
    result = row.result
    adopted = None
    if result is not None:
        adopted = {"decision": result.get("decision"), "model": result.get("model"),
                   "version": result.get("version"), "reason": result.get("reason"),
                   "old_skill": result.get("old_skill"), "new_skill": result.get("new_skill"),
                   "p_value": result.get("p_value"), "trials": result.get("trials")}
    done = sum(t["state"] in ("complete", "pruned", "fail") for t in trials)
    return {
        "id": row.id, "definition": row.definition, "kind": row.kind, "status": row.status,
        "trigger": row.trigger, "cycle_id": row.cycle_id,
        "started_ts": _iso(row.started_ts or row.created_ts),
        "created_ts": _iso(row.created_ts), "finished_ts": _iso(row.finished_ts), "budget": row.budget,
        "objective": OBJECTIVE, "window": row.window, "search_space": row.space, "trials_done": done,
        "trials": trials, "best_so_far": best_so_far, "best": best_trial, "best_value": best,
        "adopted": adopted, "result": result, "error": row.error,
    }


def get_study_view(study_id: str) -> dict[str, Any]:
    return study_view(get_study(study_id))


def list_study_views(limit: int = 20) -> list[dict[str, Any]]:
    return [study_view(row) for row in list_study_rows(limit)]
