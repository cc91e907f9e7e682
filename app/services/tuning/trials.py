"""One trial job of a study: one Optuna trial on the train part, then, if it was the last, the finish.

The train part's candles and the candidate features are loaded once per host and study
(app.services.tuning.window), not by every trial.

A job asks nothing of the study when its budget is spent (trials tried, or seconds since the first trial
job began), so extra jobs end at once. The trial reads only the candles before the study's holdout cut.
Optuna's heartbeat marks a trial whose worker was killed FAIL (the next trial job, or the finish, calls
`fail_stale_trials`), and the study goes on.
"""

from __future__ import annotations

import os
import socket
import time
from typing import Any

import optuna
from optuna.trial import TrialState

from app.core.errors import BadInput, NotFound
from app.core.logging import get_logger
from app.features import required_warmup
from app.ml import search_space
from app.ml.errors import EstimatorInputError
from app.ml.training import model_from_definition
from app.ml.tuning import trial_value
from app.services.cycle import data as cycle_data
from app.services.tuning import storage
from app.services.tuning import window as window_cache
from app.services.tuning.studies import get_study, set_status
from app.tables.tuning import TuningStudy

log = get_logger(__name__)

CAUGHT = (BadInput, EstimatorInputError, ValueError)  # a definition that cannot be fitted: that trial fails


def space_of(study: TuningStudy) -> search_space.SearchSpace:
    return search_space.parse_space(study.kind, {k: v for k, v in study.space.items() if k != "kind"})


def train_candles(study: TuningStudy, definition: dict[str, Any]) -> dict[str, Any]:
    """The candles a trial may read: the window before the holdout cut (plus the features' warm-up)."""
    model = model_from_definition(definition)
    window = study.window
    warm = int(required_warmup(list(model.features), model.timeframe))
    return cycle_data.load_range(window["symbols"], int(window["start_ms"]), int(window["cut_ms"]) - 1,
                                 model.timeframe, warm)


def budget_left(study: TuningStudy, trials: list[optuna.trial.FrozenTrial]) -> bool:
    """Trials tried (of the study's `trials`, one read of them) and seconds spent are within the budget."""
    if len(trials) - sum(t.state == TrialState.WAITING for t in trials) >= int(study.budget["trials"]):
        return False
    started = study.started_ts.timestamp() if study.started_ts is not None else time.time()
    return time.time() - started < float(study.budget["seconds"])


def shared_window(study: TuningStudy) -> window_cache.TrainWindow:
    """The study's train candles and candidate features, loaded once per host (app.services.tuning.window)."""
    space = space_of(study)
    timeframe = model_from_definition(study.base).timeframe
    return window_cache.train_window(study.id, study.window, timeframe,
                                     window_cache.candidates(list(space.features), study.base))


def objective(study: TuningStudy, worker: str | None = None) -> Any:
    """One trial: its definition, its folds (the pruner asked on the folds it judges) and its record.

    Each report, question and attribute is a round trip to the database (a commit for the writes), so a
    trial makes only those something reads: reports on the folds the pruner judges (it compares a trial
    with the others at the same fold, and never looks at the others' later folds), and three attributes,
    `definition` and `folds` (the finish and the scripts read them) and `run` (seconds, worker)."""
    space = space_of(study)
    folds = int(study.window["folds"])

    def run(trial: optuna.Trial) -> float:
        definition = search_space.sample(space, trial, study.base)
        began = time.perf_counter()
        record: dict[str, Any] = {"worker": worker or f"{socket.gethostname()}:{os.getpid()}"}
        candles, features = shared_window(study).for_definition(definition)
        record["load_seconds"] = round(time.perf_counter() - began, 4)

        def report(fold: int, mean: float) -> None:
            # the pruner never stops a trial on its warm-up folds, and stopping after the last saves nothing:
            # it is not asked then, and nothing reads a report it is not asked about
            if storage.WARMUP_FOLDS <= fold < folds - 1:
                trial.report(mean, fold)
                if trial.should_prune():
                    raise optuna.TrialPruned(f"mean skill {mean:.4f} after fold {fold} is below the median")

        try:
            result = trial_value(definition, candles, folds, report, features)
        except optuna.TrialPruned:
            record["seconds"] = round(time.perf_counter() - began, 4)
            trial.set_user_attr(storage.RUN_ATTR, record)
            raise
        record["fit_seconds"] = round(sum(float(f.get("seconds") or 0) for f in result["folds"]), 4)
        trial.set_user_attr("definition", definition)
        trial.set_user_attr("folds", [{k: f.get(k) for k in ("fold", "skill", "loss_ratio", "seconds")}
                                      for f in result["folds"]])
        record["seconds"] = round(time.perf_counter() - began, 4)
        trial.set_user_attr(storage.RUN_ATTR, record)
        return float(result["mean_skill"])

    return run


def run_trial(study_id: str, number: int, worker: str | None = None) -> dict[str, Any]:
    """The trial job's body: one trial if the budget allows, then finish the study if nothing is left."""
    try:
        study = get_study(study_id)
    except NotFound:  # its start failed after the jobs were queued and was undone
        return {"study": study_id, "skipped": "no such study"}
    if study.status not in ("queued", "running"):
        return {"study": study_id, "skipped": study.status}
    if study.status == "queued" or study.started_ts is None:  # the first job: the study's clock starts
        set_status(study_id, "running", only_from=("queued", "running"))
        study = get_study(study_id)
    optuna_study = storage.load(study.optuna_name, seed=int(study.window.get("seed", 0)) + number)
    ran = None
    if budget_left(study, optuna_study.get_trials(deepcopy=False)):
        ran = storage.optimize_one(optuna_study, objective(study, worker), CAUGHT)
    finished = maybe_finish(study_id, optuna_study)
    return {"study": study_id, "trial": ran, "finished": finished}


def maybe_finish(study_id: str, optuna_study: optuna.Study | None = None) -> bool:
    """Finish the study when its budget is spent and no trial is still running (stale ones failed first).
    `optuna_study`: the job's own (its cache of finished trials is reused), else loaded here."""
    from app.services.tuning.finish import finish_study

    study = get_study(study_id)
    if study.status != "running":
        return False
    if optuna_study is None:
        optuna_study = storage.load(study.optuna_name)
    storage.fail_stale(optuna_study)
    trials = optuna_study.get_trials(deepcopy=False)
    if budget_left(study, trials) and _jobs_pending(study_id):
        return False
    if any(t.state == TrialState.RUNNING for t in trials):
        return False
    if not set_status(study_id, "finishing", only_from=("running",)):
        return False
    finish_study(study_id)
    return True


def _jobs_pending(study_id: str) -> bool:
    """Another trial job of this study is queued or started (it may not have asked for its trial yet)."""
    from rq import get_current_job

    from app.core.queues import get_queue

    queue = get_queue("tune")
    prefix = f"tuning-{study_id}-"
    current = get_current_job()
    mine = current.id if current is not None else None
    ids = [*queue.get_job_ids(), *queue.started_job_registry.get_job_ids()]
    return any(job_id.startswith(prefix) and job_id != mine for job_id in ids)
