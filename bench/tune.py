"""Benchmark: a tuning study's trials per minute with 1 and 2 worker processes, and how much of a trial is
overhead beyond the walk-forward folds' fits (DESIGN 10; targets: >= 1.7x with 2 workers, <= 15%).

    nice -n 10 .venv/bin/python bench/tune.py [--days 3] [--trials 12] [--workers 1 2] [--space small|service]

Each run is its own process with its own SQLite database (migrated, so Optuna's tables sit beside the
project's), store and embedded Redis, and the same simulated candles; `mlpipe worker --burst -q tune`
processes (job modules preloaded, one thread per job) run the trial jobs of one study of a direction
definition (XGBoost, 4 folds; `--space small`: 40-80 trees of depth 3-5; `--space service`: the
service's default direction space, 20-300 trees of depth 2-8 with learning rate and subsample).
Throughput counts the trial phase: from the first trial's start to the last
trial's end (Optuna's own timestamps), so a worker's start-up is left out. Overhead per trial is
1 - (its folds' fit-and-score seconds) / (its whole seconds: Optuna's ask and tell in the database,
loading the train candles, features and labels), over the complete trials. Worker-time overhead is
1 - (every trial's folds' fits) / (workers x trial phase): besides the trials' own overhead, everything
a worker does between two trials (taking the job, forking its work horse, reading the study, the budget
check and RQ's result); a pruned trial's fits before it stopped are not counted as fits (it records
none), so this figure is an upper bound. Results go to `bench/results/tune-<time>.json`.

`--database postgres`: the study lives in a database of its own on the Postgres at 127.0.0.1:5432 (what
production runs), dropped at the end; by default a SQLite file (what a laptop runs).

`--same-trials`: every trial's parameters are drawn up front (Optuna's RandomSampler, a fixed seed, over
the study's own space) and queued with `enqueue_trial`, so each worker count runs the very same models;
otherwise each study's TPE draws its own, and trials per minute compare different work.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SYMBOLS = ["BTC-USDT", "ETH-USDT", "XRP-USDT"]
WORKER = ("import sys; import workers.tuning_jobs, app.services.tuning.trials, app.services.tuning.finish, "
          "app.ml; from app.cli import main; "
          "sys.argv = ['mlpipe', 'worker', '--burst', '-q', 'tune']; main()")
THREAD_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
DEFINITION = {"type": "xgboost", "name": "direction_bench", "config": {"n_estimators": 60, "max_depth": 4},
              "features": ["returns", "returns_5", "rsi_14", "natr_14"], "horizon": 1, "timeframe": "1m"}
FEATURES = ["returns", "returns_5", "returns_15", "rsi_14", "natr_14", "volume_ratio_20"]
SPACES = {
    "small": {"params": {"n_estimators": {"low": 40, "high": 80, "step": 10},
                         "max_depth": {"low": 3, "high": 5}}, "features": FEATURES, "min_features": 3},
    "service": {"features": FEATURES, "min_features": 3},  # params: the service's default direction space
}


def _attr(trial: object, attr: str) -> float | None:
    """A trial's timing: in its `run` attribute, or (trials of the code before it) an attribute of its own."""
    attrs = trial.user_attrs  # type: ignore[attr-defined]
    found = (attrs.get("run") or {}).get(attr, attrs.get(attr))
    return None if found is None else float(found)


def _mean(trials: list, attr: str) -> float:
    return sum(_attr(t, attr) or 0.0 for t in trials) / len(trials)


def _enqueue_same_trials(study_id: str, count: int) -> None:
    """Queue `count` fixed trials (the current definition's is already first) drawn with a seeded sampler."""
    import optuna

    from app.ml import search_space
    from app.services.tuning import storage
    from app.services.tuning.studies import get_study
    from app.services.tuning.trials import space_of

    row = get_study(study_id)
    space = space_of(row)
    draws = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=11))
    target = storage.load(row.optuna_name)
    for _ in range(count):
        trial = draws.ask()
        search_space.sample(space, trial, row.base)
        target.enqueue_trial(trial.params)


POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432"


def _postgres_database() -> tuple[str, object]:
    """A fresh database on the local Postgres, and the function that drops it."""
    from sqlalchemy import create_engine, text

    name = f"mlpipe_bench_tune_{uuid.uuid4().hex[:8]}"
    admin = create_engine(f"{POSTGRES}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        from app.core.db import dispose_engines

        dispose_engines()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    return f"{POSTGRES}/{name}", drop


def run(workers: int, days: float, trials: int, space: str = "small", same: bool = False,
        database: str = "sqlite") -> dict:
    store = Path(tempfile.mkdtemp(prefix=f"bench-tune-{workers}w-"))
    env = {**os.environ, **THREAD_ENV, "MODEL_STORE_DIR": str(store), "MARKET_DATA_SOURCE": "csv",
           "SYMBOLS": ",".join(SYMBOLS), "LOG_LEVEL": "WARNING"}
    for key in ("DATABASE_URL", "REDIS_URL"):
        env.pop(key, None)
        os.environ.pop(key, None)
    drop = None
    if database == "postgres":
        env["DATABASE_URL"], drop = _postgres_database()
        os.environ["DATABASE_URL"] = env["DATABASE_URL"]
    os.environ.update({k: env[k] for k in ("MODEL_STORE_DIR", "MARKET_DATA_SOURCE", "SYMBOLS")})
    from app.core.config import reset_settings

    reset_settings()
    from app.core.redis import get_redis, redis_url, shutdown_embedded
    from app.data.candles import store_candles
    from app.data.simulator import MarketSimulator, SimulatorParams
    from app.services.bootstrap import migrate
    from app.services.tuning import storage
    from app.services.tuning.studies import get_study, start_study

    migrate()
    frames = MarketSimulator(42, SimulatorParams(ar1=0.1)).generate(
        SYMBOLS, 1_700_000_000_000 // 60_000 * 60_000, int(days * 1440))
    for symbol, frame in frames.items():
        store_candles(symbol, frame, "simulated")
    get_redis()
    env["REDIS_URL"] = redis_url()
    study = start_study("direction_bench", trials=trials, minutes=60, search_space=SPACES[space],
                        options={"definitions": [DEFINITION], "symbols": SYMBOLS, "window_days": days,
                                 "folds": 4, "seed": 3})
    if same:
        _enqueue_same_trials(study.id, trials - 1)
    procs = [subprocess.Popen([sys.executable, "-c", WORKER], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL) for _ in range(workers)]
    for proc in procs:
        proc.wait(timeout=3600)
    done = get_study(study.id)
    ran = [t for t in storage.load(done.optuna_name).get_trials(deepcopy=False)
           if t.datetime_start is not None and t.datetime_complete is not None]
    shutdown_embedded()
    if drop is not None:
        drop()
    span = (max(t.datetime_complete for t in ran) - min(t.datetime_start for t in ran)).total_seconds()
    whole = [(t.datetime_complete - t.datetime_start).total_seconds() for t in ran]
    fits = [_attr(t, "fit_seconds") or 0.0 for t in ran]
    complete = [t for t in ran if _attr(t, "fit_seconds") is not None]
    complete_fits = sum(_attr(t, "fit_seconds") or 0.0 for t in complete)
    complete_whole = sum((t.datetime_complete - t.datetime_start).total_seconds() for t in complete)
    overhead = 1 - complete_fits / complete_whole
    # the fixed cost of a complete trial beyond its folds' fits, and the fits a trial needs for that cost
    # to be at most 15% of it: fixed <= 0.15 (fixed + fits)  <=>  fits >= fixed x 85 / 15
    fixed = (complete_whole - complete_fits) / len(complete)
    return {"workers": workers, "status": done.status, "trials": len(ran),
            "states": (done.result or {}).get("states"), "trial_phase_s": round(span, 2),
            "trials_per_minute": round(60 * len(ran) / span, 3),
            "mean_trial_s": round(sum(whole) / len(whole), 3),
            "mean_fit_s": round(sum(fits) / len(fits), 3), "overhead": round(overhead, 4),
            "complete_trial_fit_s": round(complete_fits / len(complete), 3),
            "fixed_ms_per_trial": round(1000 * fixed, 1), "fits_for_15pct_s": round(fixed * 85 / 15, 3),
            "worker_overhead": round(1 - sum(fits) / (workers * span), 4),
            "mean_load_s": round(_mean(ran, "load_seconds"), 3),
            "mean_inside_s": round(_mean(ran, "seconds"), 3),
            "decision": (done.result or {}).get("decision"), "same_trials": same,
            "fit_seconds_total": round(sum(fits), 3), "database": database}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=float, default=3.0)
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--space", choices=sorted(SPACES), default="small")
    parser.add_argument("--same-trials", action="store_true",
                        help="the same fixed trials for every worker count (equal work)")
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite",
                        help="where the study lives: a SQLite file, or its own database on local Postgres")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one is not None:
        print(json.dumps(run(args.one, args.days, args.trials, args.space, args.same_trials, args.database)))
        return
    started = time.strftime("%Y%m%d-%H%M%S")
    results, load = [], [os.getloadavg()]
    for workers in args.workers:
        command = [sys.executable, __file__, "--one", str(workers), "--days", str(args.days),
                   "--trials", str(args.trials), "--space", args.space, "--database", args.database] + (
                       ["--same-trials"] if args.same_trials else [])
        out = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True)
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
        load.append(os.getloadavg())
        r = results[-1]
        print(f"{r['workers']} worker(s): {r['trials']} trials in {r['trial_phase_s']} s = "
              f"{r['trials_per_minute']} trials/min; a trial {r['mean_trial_s']} s of which folds' fits "
              f"{r['mean_fit_s']} s (overhead {100 * r['overhead']:.1f}%: "
              f"{r['fixed_ms_per_trial']} ms fixed on "
              f"{r['complete_trial_fit_s']} s of fits a complete trial, 15% from "
              f"{r['fits_for_15pct_s']} s of fits; of worker time "
              f"{100 * r['worker_overhead']:.1f}%; loading candles "
              f"{r['mean_load_s']} s, objective {r['mean_inside_s']} s; all fits {r['fit_seconds_total']} s, "
              f"states {r['states']}); study {r['status']}", flush=True)
    by = {r["workers"]: r for r in results}
    figures = {"args": vars(args), "runs": results, "load": load, "cpus": os.cpu_count()}
    if 1 in by and 2 in by:
        figures["speedup_2_workers"] = round(by[2]["trials_per_minute"] / by[1]["trials_per_minute"], 3)
        print(f"2 workers / 1 worker: {figures['speedup_2_workers']}x (load averages {load})")
    path = ROOT / "bench" / "results" / f"tune-{started}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(figures, indent=2))
    print(f"written to {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
