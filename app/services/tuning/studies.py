"""Starting, reading and resuming tuning studies (DESIGN 10).

A study tunes one definition on one window of stored candles: the window's last 20% (after `cut_ms`) is
the holdout, which no trial reads (trials load only the candles before the cut). `start_study` writes the
study row, creates the Optuna study in the project's database, enqueues the current definition as its
first trial (`enqueue_trial`) and puts one RQ trial job per trial of the budget on the `tune` queue (in one
Redis transaction: all of them or none); any number of workers then run them at once. A start that fails
once the request is checked (Redis or the database down) leaves nothing behind: Redis is asked first, and
a failure after the first write deletes the row and the Optuna study again; it is counted in
`mlpipe_tuning_starts_lost_total` and reaches the API as a 503. The last trial job to end finishes the study
(app.services.tuning.finish).
"""

from __future__ import annotations

import math
import time
import uuid
from typing import Any

import optuna
from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import select

from app.core.config import get_settings
from app.core.db import session_scope
from app.core.errors import BadInput, NotFound
from app.core.logging import get_logger
from app.core.metrics import record_tuning_start_lost
from app.core.queues import get_queue
from app.ml import search_space as spaces
from app.ml.training import folds_of, model_from_definition
from app.services.cycle import data as cycle_data
from app.services.cycle.definitions import load_definitions, search_space_for, window_days
from app.services.definition_versions import apply_adopted
from app.services.tuning import storage
from app.tables.models import utcnow
from app.tables.tuning import STUDY_TRIGGERS, TuningStudy

log = get_logger(__name__)

JOBS = "workers.tuning_jobs"
TRIAL_TIMEOUT = 3600
RESULT_TTL = 7 * 86400
LIVE = ("queued", "running")
MAX_TRIALS = 10_000


def current_definition(name: str, options: dict[str, Any] | None = None) -> dict[str, Any]:
    """The definition a cycle would build now under `name` (the file's, with its newest adopted version)."""
    definitions = apply_adopted(load_definitions(options))
    found = next((d for d in definitions if d["name"] == name), None)
    if found is None:
        known = ", ".join(d["name"] for d in definitions)
        raise NotFound(f"no model definition {name!r}; known: {known}")
    return found


def _budget(trials: int | None, minutes: float | None) -> dict[str, Any]:
    settings = get_settings()
    trials = settings.tuning_trials if trials is None else trials
    minutes = settings.tuning_minutes if minutes is None else minutes
    if isinstance(trials, bool) or not isinstance(trials, int) or not 1 <= trials <= MAX_TRIALS:
        raise BadInput(f"trials must be a whole number from 1 to {MAX_TRIALS}, got {trials!r}")
    if not isinstance(minutes, int | float) or not 0 < float(minutes) <= 24 * 60 or math.isnan(minutes):
        raise BadInput(f"minutes must be a number above 0 and at most 1440, got {minutes!r}")
    return {"trials": trials, "seconds": round(float(minutes) * 60, 3)}


def _window(options: dict[str, Any], definition: dict[str, Any], folds: int) -> dict[str, Any]:
    symbols = list(options.get("symbols") or get_settings().symbols)
    if options.get("window") is not None:  # the cycle's own window
        start_ms, end_ms = int(options["window"]["start_ms"]), int(options["window"]["end_ms"])
    else:
        end_ms = cycle_data.anchor_ts(symbols)
        start_ms = int(end_ms - window_days(options) * cycle_data.DAY_MS) + 60_000
    bar = model_from_definition(definition).bar_ms
    ratio = float(options.get("train_ratio", 0.8))
    cut_ms = start_ms + math.ceil(ratio * (end_ms - start_ms) / bar) * bar
    return {"symbols": symbols, "start_ms": start_ms, "cut_ms": cut_ms, "end_ms": end_ms, "folds": folds,
            "seed": int(options.get("seed", 0))}


def start_study(
    definition: str, *, trials: int | None = None, minutes: float | None = None, trigger: str = "cli",
    search_space: dict[str, Any] | None = None, options: dict[str, Any] | None = None,
    cycle_id: str | None = None, base: dict[str, Any] | None = None,
) -> TuningStudy:
    """Check everything, record the study, create it in Optuna's storage and enqueue its trial jobs.

    `options` (tests, benchmarks, the cycle): `definitions` / `models_file` (where `definition` is found),
    `symbols`, `window_days` or `window` ({start_ms, end_ms}), `folds`, `seed`, `train_ratio`.
    `base` (the cycle) is the definition to tune as the cycle built it."""
    if trigger not in STUDY_TRIGGERS:
        raise BadInput(f"unknown trigger {trigger!r}; one of {', '.join(STUDY_TRIGGERS)}")
    options = dict(options or {})
    budget = _budget(trials, minutes)
    current = dict(base) if base is not None else current_definition(definition, options)
    model_from_definition(current)  # a definition that cannot be built fails here
    space = spaces.with_current(search_space_for(str(current["type"]), search_space, options), current)
    folds = int(options.get("folds") or get_settings().tuning_folds)
    if folds < 2:
        raise BadInput(f"a study needs at least 2 walk-forward folds, got {folds}")
    folds_of({"walk_forward_folds": folds})
    window = _window(options, current, folds)
    study_id = f"st_{uuid.uuid4().hex[:12]}"
    row = TuningStudy(id=study_id, definition=definition, kind=space.kind, status="queued", trigger=trigger,
                      cycle_id=cycle_id, optuna_name=f"mlpipe-{study_id}", budget=budget, base=current,
                      space=space.as_dict(), window=window)
    try:
        get_queue("tune").connection.ping()  # the queue answers before anything is written
    except RedisError:
        _lost(trigger, "redis", study_id)
        raise
    try:
        optuna_study = storage.create(row.optuna_name)
        optuna_study.enqueue_trial(spaces.as_trial_params(space, current), user_attrs={"current": True})
        with session_scope(write=True) as session:
            session.add(row)
        enqueue_trials(study_id, budget["trials"])
    except Exception as exc:
        _forget(study_id, row.optuna_name)
        reason = "redis" if isinstance(exc, RedisError) else "database" if isinstance(
            exc, SQLAlchemyError) else "other"
        _lost(trigger, reason, study_id)
        raise
    log.info("tuning study queued", study_id=study_id, definition=definition, trigger=trigger, **budget)
    return get_study(study_id)


def _lost(trigger: str, reason: str, study_id: str) -> None:
    record_tuning_start_lost(trigger, reason)
    log.warning("tuning study not started", study_id=study_id, trigger=trigger, reason=reason)


def _forget(study_id: str, optuna_name: str) -> None:
    """Undo a start that failed halfway: its row and its Optuna study, each if it was written."""
    try:
        with session_scope(write=True) as session:
            row = session.get(TuningStudy, study_id)
            if row is not None:
                session.delete(row)
    except SQLAlchemyError:
        log.warning("tuning study row not removed", study_id=study_id, exc_info=True)
    try:
        optuna.delete_study(study_name=optuna_name, storage=storage.storage())
    except KeyError:
        pass  # never created
    except Exception:  # noqa: BLE001 - the database is down too: an empty study nobody lists
        log.warning("optuna study not removed", study=optuna_name, exc_info=True)


def enqueue_trials(study_id: str, count: int, first: int = 0) -> None:
    """`count` trial jobs (numbers `first`..), each running at most one trial of the study; in one Redis
    transaction (all of them are queued, or none)."""
    queue = get_queue("tune")
    tag = uuid.uuid4().hex[:6]
    queue.enqueue_many([
        queue.prepare_data(f"{JOBS}.tuning_trial_job", (study_id, i), job_id=f"tuning-{study_id}-{tag}-{i}",
                           timeout=TRIAL_TIMEOUT, result_ttl=RESULT_TTL,
                           description=f"tuning {study_id}: trial job {i}")
        for i in range(first, first + count)
    ])


def resume_study(study_id: str, trials: int | None = None, minutes: float | None = None) -> TuningStudy:
    """Carry on a study (after a worker died, or to spend more): `trials` more, a fresh time budget."""
    study = get_study(study_id)
    if study.status == "finishing":
        raise BadInput(f"study {study_id} is being finished; read it again in a moment")
    more = _budget(trials if trials is not None else study.budget["trials"], minutes)
    done = len(storage.load(study.optuna_name).get_trials(deepcopy=False))
    budget = {"trials": done + more["trials"], "seconds": more["seconds"], "resumed_at": time.time()}
    get_queue("tune").connection.ping()  # Redis down: nothing changes (RedisError, a 503 over HTTP)
    before = {k: getattr(study, k) for k in ("budget", "status", "result", "finished_ts", "started_ts")}
    _update(study_id, budget=budget, status="queued", result=None, finished_ts=None, started_ts=None)
    try:
        enqueue_trials(study_id, more["trials"], first=done)
    except Exception:
        _update(study_id, **before)  # as it was: no study waits for jobs that were never queued
        raise
    return get_study(study_id)


def _update(study_id: str, **fields: Any) -> None:
    with session_scope(write=True) as session:
        row = session.exec(select(TuningStudy).where(TuningStudy.id == study_id).with_for_update()).one()
        for key, value in fields.items():
            setattr(row, key, value)
        session.add(row)


def get_study(study_id: str) -> TuningStudy:
    with session_scope() as session:
        row = session.get(TuningStudy, study_id)
        if row is None:
            raise NotFound(f"no tuning study {study_id!r}; GET /tuning lists them")
        return row


def list_study_rows(limit: int = 20, definition: str | None = None) -> list[TuningStudy]:
    with session_scope() as session:
        stmt = select(TuningStudy).order_by(TuningStudy.created_ts.desc()).limit(limit)  # type: ignore[attr-defined]
        if definition is not None:
            stmt = stmt.where(TuningStudy.definition == definition)
        return list(session.exec(stmt).all())


def set_status(study_id: str, status: str, *, only_from: tuple[str, ...] | None = None,
               **fields: Any) -> bool:
    """Move the study to `status` (only from `only_from` when given); False when another job got there."""
    with session_scope(write=True) as session:
        row = session.exec(select(TuningStudy).where(TuningStudy.id == study_id).with_for_update()).one()
        if only_from is not None and row.status not in only_from:
            return False
        row.status = status
        if status == "running" and row.started_ts is None:
            row.started_ts = utcnow()
        if status in ("finished", "failed"):
            row.finished_ts = utcnow()
        for key, value in fields.items():
            setattr(row, key, value)
        session.add(row)
        return True
