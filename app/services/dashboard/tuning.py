"""The Tuning page: each study's trials over time, the best so far, and the adopted result (DESIGN 10).

The studies come from the tuning service (app.services.tuning: the same views as GET /tuning), and the
operator's "start a tuning study" action starts one as POST /tuning does. A study (every timestamp
ISO-8601 UTC; `value` is the objective, walk-forward skill on the train part):

    {"id": "st_0123456789ab", "definition": "direction_predictor", "kind": "direction",
     "status": "queued" | "running" | "finishing" | "finished" | "failed", "trigger": "cycle" | "cli" | "api",
     "started_ts": "...", "finished_ts": "..." | null,
     "budget": {"trials": 40, "seconds": 1800},
     "objective": "mean walk-forward skill (train part only)",
     "trials": [{"number": 0, "state": "complete" | "pruned" | "fail" | "running" | "waiting",
                 "value": 0.012 | null, "started_ts": "...", "finished_ts": "..." | null,
                 "params": {"max_depth": 4, ...}}],
     "adopted": {"decision": "adopted" | "rejected", "model": null, "version": 2 | null,
                 "reason": "...", "old_skill": 0.010, "new_skill": 0.018, "p_value": 0.03} | null}

(`model` stays null: an adopted definition is a new definition version that the next cycle builds.)
"""

from __future__ import annotations

from typing import Any

from app.services.tuning import studies, views

NOT_INSTALLED = "tuning studies are not available: the tuning service could not be reached"


def list_studies(limit: int = 20) -> list[dict[str, Any]]:
    """Studies, newest first, in the shape above."""
    return views.list_study_views(limit)


def available() -> bool:
    return True


def start_study(definition: str) -> dict[str, Any]:
    """Start a study of one model definition (operator action), as POST /tuning does."""
    study = studies.start_study(definition, trigger="api")
    return {"id": study.id, "status": study.status}


def study_view(study: dict[str, Any]) -> dict[str, Any]:
    """A study with the best value so far after each finished trial (the line under the trials)."""
    trials = sorted(study.get("trials") or [], key=lambda t: t.get("number", 0))
    best: float | None = None
    best_trial: dict[str, Any] | None = None
    best_so_far = []
    for trial in trials:
        value = trial.get("value")
        if trial.get("state") == "complete" and value is not None and (best is None or value > best):
            best, best_trial = float(value), trial
        best_so_far.append(best)
    counts: dict[str, int] = {}
    for trial in trials:
        counts[trial.get("state", "unknown")] = counts.get(trial.get("state", "unknown"), 0) + 1
    return {**study, "trials": trials, "best_so_far": best_so_far, "best": best_trial, "states": counts}


def tuning_page() -> dict[str, Any]:
    return {
        "studies": [study_view(s) for s in list_studies()],
        "available": available(),
        "not_available_reason": None if available() else NOT_INSTALLED,
    }
