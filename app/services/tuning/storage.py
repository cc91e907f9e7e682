"""Optuna's RDB storage on the project's own database (DESIGN 10), its sampler and its pruner.

Optuna keeps its own tables and its own Alembic version table (`alembic_version`, the name the project's
migrations use too). On Postgres its tables live in a schema of their own, `optuna`, in the same database
(the search path of Optuna's connections), so the two version tables never meet. On SQLite (one file, no
schemas) Optuna's tables sit beside the project's; Optuna finds the project's version row and does not
stamp its own, so its schema check is skipped there (it would compare the project's revision with its
own), and the project's migrations ignore Optuna's tables (migrations/env.py).

Trials report a heartbeat; a trial whose worker was killed stops beating and is marked FAIL by the next
trial or by the study's finish (`fail_stale_trials`), so the study goes on. A worker killed between its
trial's creation and the trial's first beat leaves a trial Optuna's sweep skips (it has no heartbeat
row): `fail_stale` fails it too once it is older than the grace period, else the study never finishes.
"""

from __future__ import annotations

import functools
import os
import warnings
from datetime import datetime, timedelta
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState
from sqlalchemy import create_engine, event, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from app.core.config import get_settings
from app.core.errors import Unavailable

SCHEMA = "optuna"
optuna.logging.set_verbosity(optuna.logging.WARNING)


def _quiet(build: Any) -> Any:
    """Heartbeats and the constant liar are marked experimental by Optuna: a warning, not a fault."""

    @functools.wraps(build)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return build(*args, **kwargs)

    return wrapper


@functools.cache
@_quiet
def _storage(url: str, heartbeat: int, grace: int) -> optuna.storages.RDBStorage:
    backend = make_url(url).get_backend_name()
    kwargs: dict[str, Any] = {"heartbeat_interval": heartbeat, "grace_period": grace}
    if backend == "postgresql":
        engine = create_engine(url, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}"))
        engine.dispose()
        timeout_ms = int(get_settings().database_statement_timeout_seconds * 1000)
        options = f"-csearch_path={SCHEMA} -cstatement_timeout={timeout_ms}"
        connect = {"options": options, "connect_timeout": get_settings().database_connect_timeout_seconds}
        engine_kwargs = {"connect_args": connect, "pool_pre_ping": True}
        rdb = optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs, **kwargs)
        _built.append(rdb)
        return rdb
    _require_migrated(url)
    engine_kwargs = {"connect_args": {"timeout": 30}} if backend == "sqlite" else {}
    rdb = optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs, skip_compatibility_check=True,
                                     **kwargs)
    if backend == "sqlite":
        event.listen(rdb.engine, "connect", _sqlite_no_sync)
        rdb.engine.dispose()  # connections opened while Optuna checked its tables get the pragma too
    _built.append(rdb)
    return rdb


def _sqlite_no_sync(dbapi_connection: Any, _record: Any) -> None:
    """Optuna commits each parameter, report and attribute of a trial on its own (about 40 a trial): with
    SQLite's default (synchronous=FULL) each waited for a disk flush, 3 ms here. In WAL mode (the project's
    own connections set it too, app.core.db) synchronous=NORMAL keeps the file consistent and loses at most
    the last commits of a power cut, never of a crashed process: a study's bookkeeping, which a resume
    redoes."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _require_migrated(url: str) -> None:
    """Optuna would stamp its own revision into an empty `alembic_version`: migrate the project first."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            row = conn.execute(text("SELECT version_num FROM alembic_version")).first()
    except Exception:  # noqa: BLE001 - no table yet
        row = None
    finally:
        engine.dispose()
    if row is None:
        raise Unavailable("the database is not migrated yet: run `mlpipe migrate` (or `mlpipe up`) first")


def storage() -> optuna.storages.RDBStorage:
    """The storage on DATABASE_URL (one per process and URL; a worker builds it before forking its work
    horses, which inherit it: `_forget_pools_in_child`)."""
    settings = get_settings()
    return _storage(settings.resolved_database_url, int(settings.tuning_heartbeat_seconds),
                    int(settings.tuning_grace_seconds))


@functools.cache
def _with_cache(rdb: optuna.storages.RDBStorage) -> optuna.storages.BaseStorage:
    return optuna.storages.get_storage(rdb)


def cached() -> optuna.storages.BaseStorage:
    """`storage()` behind Optuna's own cache of finished trials (what `load_study` puts around an RDBStorage
    on every call), one per process: a finished trial never changes, so a process reads each one once and
    then only the unfinished and newer ones. A worker reads the study before forking a trial's work horse
    (workers.tuning_jobs.warm_trial): the horse inherits the study's finished trials, and its first read of
    the study, which was every trial's and the largest one, fetches only what changed since."""
    return _with_cache(storage())


def _forget_pools_in_child() -> None:
    """Building an RDBStorage (its engine, Optuna's table and version checks) took 80-220 ms, which every
    trial job paid when each work horse built its own. The worker now builds it once and its horses inherit
    it; like the project's engines (app.core.db), a forked horse must not reuse its parent's pooled
    connections, so it gets a fresh pool (SQLAlchemy's advice for fork: `dispose(close=False)`)."""
    for cached in _built:
        cached.engine.dispose(close=False)


_built: list[optuna.storages.RDBStorage] = []
os.register_at_fork(after_in_child=_forget_pools_in_child)

WARMUP_FOLDS = 1  # the pruner judges a trial from its second fold on


@_quiet
def sampler(seed: int) -> optuna.samplers.BaseSampler:
    """TPE; `constant_liar` keeps trials running at once on several workers from drawing the same point.
    Each trial job seeds its own sampler differently (the study's seed + the job's number). `multivariate`:
    a trial's parameters are drawn together, from one read of the study's trials (drawn one at a time, each
    of the ~10 parameters read them all again, about 10 ms each on SQLite), and TPE then models how they
    act together."""
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=5, constant_liar=True, multivariate=True)


def pruner() -> optuna.pruners.BasePruner:
    """Median pruning over the walk-forward folds: a trial whose running mean fold skill falls below the
    median of earlier trials at the same fold stops (after 3 complete trials, from the second fold)."""
    return optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=WARMUP_FOLDS)


def create(name: str) -> optuna.Study:
    return optuna.create_study(storage=cached(), study_name=name, direction="maximize",
                               sampler=sampler(0), pruner=pruner(), load_if_exists=True)


def load(name: str, seed: int = 0) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=cached(), sampler=sampler(seed), pruner=pruner())


@_quiet
def fail_stale(study: optuna.Study) -> None:
    """Mark FAIL the running trials whose heartbeat stopped (their worker died), and those older than the
    grace period that never beat (their worker died before the first beat)."""
    optuna.storages.fail_stale_trials(study)
    rdb = storage()
    grace = timedelta(seconds=rdb.grace_period or 2 * (rdb.heartbeat_interval or 1))
    old = {t._trial_id: t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
           if t.datetime_start is not None and datetime.now() - t.datetime_start > grace}  # Optuna's clock
    if not old:
        return
    from optuna.storages._rdb import models  # Optuna's own tables: no public query of the heartbeat rows

    with Session(rdb.engine) as session:
        beaten = set(session.scalars(select(models.TrialHeartbeatModel.trial_id)
                                     .where(models.TrialHeartbeatModel.trial_id.in_(list(old)))))
    for trial_id in set(old) - beaten:
        try:
            study._storage.set_trial_state_values(trial_id, state=TrialState.FAIL)
        except optuna.exceptions.UpdateFinishedTrialError:
            pass  # it finished meanwhile


@_quiet
def optimize_one(study: optuna.Study, objective: Any, catch: tuple[type[Exception], ...]) -> int | None:
    """Run one trial of the study in this process (Optuna asks, runs, beats and tells); its number."""
    told: list[int] = []
    study.optimize(objective, n_trials=1, catch=catch, gc_after_trial=False,
                   callbacks=[lambda _study, trial: told.append(trial.number)])
    return told[0] if told else None


RUN_ATTR = "run"  # a trial's timings and worker, one user attribute (one write)


def run_record(trial: FrozenTrial) -> dict[str, Any]:
    """A trial's `seconds`, `fit_seconds`, `load_seconds` and `worker` (trials of studies run before these
    were gathered in one attribute kept each as an attribute of its own)."""
    found = trial.user_attrs.get(RUN_ATTR)
    if isinstance(found, dict):
        return found
    return {k: trial.user_attrs[k] for k in ("seconds", "fit_seconds", "load_seconds", "worker")
            if k in trial.user_attrs}
