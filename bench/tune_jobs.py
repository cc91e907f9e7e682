"""Benchmark: where a trial job's time goes, one job at a time, as a worker runs it (no RQ, no profiler).

    nice -n 10 .venv/bin/python bench/tune_jobs.py [--space small|service] [--days 3] [--trials 16] [--parts]

The study of bench/tune.py (same candles, definition and spaces), made by another process; this one has
only a worker's imports, and for each trial job it does what `MlpipeWorker` does before a fork
(`warm_trial`, a collection, `gc.freeze`), forks, and the child runs the job's body (`run_trial`) and
exits. Per job, from the first 3 on (the first builds the window and warms the sampler): the job's wall
time (the parent's warm, the fork, the child's whole job, its exit), Optuna's trial span (trial created
-> told), the folds' fits, and the two overheads, 1 - fits / job and 1 - fits / span (over all these
jobs; a pruned trial's fits before it stopped are not counted). RQ's own bookkeeping (taking the job,
storing its result) is left out: bench/tune.py measures with it. `--parts`: wall-clock totals per job of
the pieces (wrapped in the child before it runs: Optuna's reads and writes, the sampler, the pruner, the
dataset, the folds). Run it with PYTHONPATH set to another checkout's root to measure that code (the
bench falls back to the older attribute names).
"""

from __future__ import annotations

import argparse
import collections
import functools
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import tune as base  # noqa: E402 - the same study as bench/tune.py

SKIP = 3


def _wrap_parts(totals: collections.Counter, calls: collections.Counter) -> None:
    from optuna.samplers._tpe import sampler as tpe
    from optuna.storages import _cached_storage as cached
    from optuna.study import study as optuna_study
    from optuna.trial import _trial as optuna_trial

    import app.ml.search_space as space
    import app.ml.tuning as tuning
    import app.ml.walk_forward as folds
    import app.services.tuning.trials as trials

    def wrap(owner: Any, name: str, label: str) -> None:
        fn = getattr(owner, name, None)
        if fn is None:
            return

        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            began = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                totals[label] += time.perf_counter() - began
                calls[label] += 1

        setattr(owner, name, timed)

    for name, label in [("set_trial_param", "write: parameter"),
                        ("set_trial_intermediate_value", "write: report"),
                        ("set_trial_user_attr", "write: attribute"), ("create_new_trial", "write: new trial"),
                        ("set_trial_state_values", "write: tell"), ("record_heartbeat", "write: heartbeat"),
                        ("get_all_trials", "read: the study's trials")]:
        wrap(cached._CachedStorage, name, label)
    wrap(tpe.TPESampler, "infer_relative_search_space", "sampler: search space")
    wrap(tpe.TPESampler, "sample_relative", "sampler: draw")
    wrap(optuna_trial.Trial, "should_prune", "pruner question")
    wrap(optuna_study.Study, "ask", "ask")
    wrap(space, "sample", "suggest all (sampler + parameters)")
    wrap(tuning, "build_dataset", "dataset")
    wrap(tuning, "walk_forward", "walk-forward (fits, reports, questions)")
    wrap(folds, "fold_masks", "walk-forward: fold masks")
    wrap(folds, "_period_skills", "walk-forward: 12-hour skills")
    window_cache = getattr(trials, "window_cache", None)  # absent in code before the shared window
    if window_cache is not None:
        wrap(window_cache.TrainWindow, "for_definition", "window: a trial's rows")
    wrap(trials, "get_study", "study row")
    wrap(trials, "_jobs_pending", "jobs pending (Redis)")
    wrap(trials, "run_trial", "job body")


def prepare(space: str, days: float, trials: int) -> str:
    """Migrate, store the candles and start the study (in a process of its own); its id."""
    from app.data.candles import store_candles
    from app.data.simulator import MarketSimulator, SimulatorParams
    from app.services.bootstrap import migrate
    from app.services.tuning.studies import start_study

    migrate()
    frames = MarketSimulator(42, SimulatorParams(ar1=0.1)).generate(
        base.SYMBOLS, 1_700_000_000_000 // 60_000 * 60_000, int(days * 1440))
    for symbol, frame in frames.items():
        store_candles(symbol, frame, "simulated")
    return start_study("direction_bench", trials=trials, minutes=60, search_space=base.SPACES[space],
                       options={"definitions": [base.DEFINITION], "symbols": base.SYMBOLS,
                                "window_days": days, "folds": 4, "seed": 3}).id


def run(space: str, days: float, trials: int, parts: bool) -> dict[str, Any]:
    store = Path(tempfile.mkdtemp(prefix="bench-tune-jobs-"))
    os.environ.update({**base.THREAD_ENV, "MODEL_STORE_DIR": str(store), "MARKET_DATA_SOURCE": "csv",
                       "SYMBOLS": ",".join(base.SYMBOLS), "LOG_LEVEL": "WARNING"})
    for key in ("DATABASE_URL", "REDIS_URL"):
        os.environ.pop(key, None)
    from app.core.config import reset_settings

    reset_settings()
    from app.core.redis import get_redis, redis_url, shutdown_embedded

    get_redis()
    os.environ["REDIS_URL"] = redis_url()
    reset_settings()
    # the database, candles and study are made by another process: this one, like a worker, has only the
    # worker's imports (migrating would import Alembic, which building Optuna's storage needs too)
    made = subprocess.run([sys.executable, __file__, "--prepare", space, str(days), str(trials + 5)],
                          env=os.environ, capture_output=True, text=True, check=True)
    study_id = made.stdout.strip().splitlines()[-1]
    import app.ml  # noqa: F401 - what `mlpipe worker` imports before forking
    import app.services.tuning.finish  # noqa: F401
    import workers.tuning_jobs as jobs
    from app.services.tuning import storage
    from app.services.tuning.studies import get_study
    from app.services.tuning.trials import run_trial

    study = get_study(study_id)
    walls, part_files = [], []
    for number in range(trials):
        began = time.perf_counter()
        jobs.warm_trial(study.id, number)
        gc.collect()
        gc.freeze()
        out = store / f"parts-{number}.json"
        pid = os.fork()
        if pid == 0:
            try:
                totals: collections.Counter = collections.Counter()
                calls: collections.Counter = collections.Counter()
                if parts:
                    _wrap_parts(totals, calls)
                    import app.services.tuning.trials as trials_module

                    trials_module.run_trial(study.id, number)
                    out.write_text(json.dumps({"totals": totals, "calls": calls}))
                else:
                    run_trial(study.id, number)
            finally:
                os._exit(0)
        os.waitpid(pid, 0)
        walls.append(time.perf_counter() - began)
        part_files.append(out)
    ran = storage.load(study.optuna_name).get_trials(deepcopy=False)[SKIP:trials]
    shutdown_embedded()
    jobs_n = trials - SKIP
    fits = sum(base._attr(t, "fit_seconds") or 0.0 for t in ran)
    span = sum((t.datetime_complete - t.datetime_start).total_seconds() for t in ran if t.datetime_complete)
    wall = sum(walls[SKIP:])
    result: dict[str, Any] = {
        "space": space, "days": days, "trials": trials, "jobs": jobs_n,
        "states": [t.state.name.lower() for t in ran], "job_s": round(wall / jobs_n, 4),
        "span_s": round(span / jobs_n, 4), "fits_s": round(fits / jobs_n, 4),
        "job_overhead": round(1 - fits / wall, 4), "span_overhead": round(1 - fits / span, 4),
    }
    if parts:
        totals, calls = collections.Counter(), collections.Counter()
        for path in part_files[SKIP:]:
            data = json.loads(path.read_text())
            totals.update(data["totals"])
            calls.update(data["calls"])
        result["parts_ms"] = {k: [round(1000 * v / jobs_n, 1), round(calls[k] / jobs_n, 1)]
                              for k, v in totals.most_common()}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", choices=sorted(base.SPACES), default="small")
    parser.add_argument("--days", type=float, default=3.0)
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--parts", action="store_true")
    parser.add_argument("--prepare", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.prepare:
        print(prepare(args.prepare[0], float(args.prepare[1]), int(args.prepare[2])))
        return
    load = os.getloadavg()
    r = run(args.space, args.days, args.trials, args.parts)
    print(f"{r['jobs']} jobs ({args.space}, {args.days:g} days): a job {1000 * r['job_s']:.0f} ms, its trial "
          f"{1000 * r['span_s']:.0f} ms, folds' fits {1000 * r['fits_s']:.0f} ms: overhead "
          f"{100 * r['job_overhead']:.1f}% of the job, {100 * r['span_overhead']:.1f}% of the trial "
          f"(load {load[0]:.2f} -> {os.getloadavg()[0]:.2f})")
    for name, (ms, n) in (r.get("parts_ms") or {}).items():
        print(f"  {name:42s} {ms:7.1f} ms a job ({n:g} calls)")


if __name__ == "__main__":
    main()
