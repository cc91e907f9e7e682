"""The end of a study: the best trial's definition and the current one, refitted on the train part and
scored on the holdout the study never saw, with the paired test; adopted only when better at 5%.

An adopted definition becomes a new version in the database (app.services.definition_versions) that
later cycles build; config/models.yaml is left as the operator wrote it.
"""

from __future__ import annotations

from typing import Any

from optuna.trial import FrozenTrial, TrialState

from app.core.logging import get_logger
from app.features import required_warmup
from app.ml.serialize import jsonable
from app.ml.training import model_from_definition
from app.ml.tuning import ALPHA, holdout_verdict
from app.services import definition_versions
from app.services.cycle import data as cycle_data
from app.services.tuning import storage
from app.services.tuning import window as window_cache
from app.services.tuning.studies import get_study, set_status
from app.services.tuning.trials import train_candles

log = get_logger(__name__)


def _folds(trial: FrozenTrial | None) -> dict[str, Any] | None:
    return None if trial is None else {"folds": trial.user_attrs.get("folds") or []}


def _counts(trials: list[FrozenTrial]) -> dict[str, int]:
    out: dict[str, int] = {}
    for t in trials:
        out[t.state.name.lower()] = out.get(t.state.name.lower(), 0) + 1
    return out


def finish_study(study_id: str) -> dict[str, Any]:
    """Decide and record the study's result (its status becomes finished, or failed with the reason)."""
    try:
        result = _decide(study_id)
    except Exception as exc:  # noqa: BLE001 - any reason is the study's reason to fail
        message = f"{type(exc).__name__}: {getattr(exc, 'message', exc)}"
        log.warning("tuning study failed", study_id=study_id, error=message)
        set_status(study_id, "failed", error=message)
        return {"error": message}
    finally:
        window_cache.forget(study_id)  # this host's copy of the train window (a resume builds it again)
    set_status(study_id, "finished", result=jsonable(result))
    log.info("tuning study finished", study_id=study_id, decision=result["decision"])
    return result


def _decide(study_id: str) -> dict[str, Any]:
    study = get_study(study_id)
    optuna_study = storage.load(study.optuna_name)
    trials = optuna_study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == TrialState.COMPLETE and t.value is not None]
    tried = len([t for t in trials if t.state != TrialState.WAITING])
    base = {"trials": tried, "states": _counts(trials), "alpha": ALPHA}
    if not complete:
        return {**base, "decision": "rejected", "model": None, "version": None,
                "reason": "no trial completed: nothing to compare"}
    best = max(complete, key=lambda t: (t.value, -t.number))
    current = next((t for t in trials if t.user_attrs.get("current")), None)
    best_def = dict(best.user_attrs.get("definition") or {})
    current_def = dict(study.base)
    window = study.window
    model = model_from_definition(best_def)
    warm = max(int(required_warmup(list(d["features"]), model.timeframe)) for d in (best_def, current_def))
    whole = cycle_data.load_range(window["symbols"], int(window["start_ms"]), int(window["end_ms"]),
                                  model.timeframe, warm)
    verdict = holdout_verdict(
        current_def, best_def, train_candles=train_candles(study, {**best_def, "features": list(
            dict.fromkeys([*best_def["features"], *current_def["features"]]))}),
        window_candles=whole, cut_ms=int(window["cut_ms"]), folds_current=_folds(current),
        folds_best=_folds(best), trials=tried,
    )
    result = {
        **base, "decision": "adopted" if verdict.adopt else "rejected", "reason": verdict.reason,
        "model": None, "version": None,
        "best": {"number": best.number, "value": best.value, "params": best.params, "definition": best_def},
        "current": {"number": None if current is None else current.number,
                    "value": None if current is None else current.value, "definition": current_def},
        "holdout": verdict.as_dict(), "old_skill": verdict.current_skill, "new_skill": verdict.best_skill,
        "p_value": verdict.test.get("p_value"),
    }
    if verdict.adopt:
        version = definition_versions.adopt(study.definition, best_def, study_id, verdict.reason,
                                            jsonable({k: v for k, v in result.items() if k != "best"}))
        result["version"] = version.version
    return result
