"""Benchmark: one full default cycle (config/models.yaml) on 3 symbols x 7 days of 1m candles,
with 1 and with 2 worker processes (`mlpipe worker`, job modules preloaded, stopped once the cycle ends).

Each job runs on one thread: every worker gets OMP_NUM_THREADS=1, MKL_NUM_THREADS=1,
OPENBLAS_NUM_THREADS=1 (xgboost, numpy/BLAS and torch's intra-op pool all follow it; scikit-learn
models use n_jobs=1 by default). Each run gets its own SQLite database, store and embedded Redis, and the
same simulated candles; the catch-up ingest is off (MARKET_DATA_SOURCE=csv), so both runs do equal work.

Reported: wall time (first cycle job started -> cycle finished), the sum of the jobs' own compute times
(measured inside each job), overhead = wall / (compute / workers) - 1 for 1 worker, and speed-up.

With `--before REF` it first runs the same benchmark on the code of git revision REF (extracted with
`git archive` into a temporary directory, same interpreter), then on this tree, and prints the ratio of
their wall times: the cost of a change (issue 8: intervals, paired tests and walk-forward folds), measured
in one run. `--folds K ...` sets every definition's walk-forward folds (default: the definitions' own, 4).

    .venv/bin/python bench/cycle.py [--days 7] [--workers 1 2]
    .venv/bin/python bench/cycle.py --before d0fac13 --workers 1 2 --folds 4 0
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SYMBOLS = ["BTC-USDT", "ETH-USDT", "XRP-USDT"]
# `mlpipe worker`, with the job modules imported first: RQ forks a work-horse per job, so what the
# parent imported (torch, xgboost, sklearn: ~2 s) is not paid again by every job. Not `--burst`: a burst
# worker that finds the queue empty while another runs the ingest stage leaves before the builds are
# queued, and the cycle then builds on one worker (a 10-symbol run showed no overlap at all that way).
WORKER = (
    "import sys; import workers.cycle_jobs, app.services.cycle.build, app.services.cycle.drift, "
    "app.services.cycle.rank, app.ml; from app.cli import main; "
    "sys.argv = ['mlpipe', 'worker']; main()"
)
THREAD_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}


def run(workers: int, days: float, folds: int | None = None) -> dict:
    store = Path(tempfile.mkdtemp(prefix=f"bench-cycle-{workers}w-"))
    env = {**os.environ, **THREAD_ENV, "MODEL_STORE_DIR": str(store), "MARKET_DATA_SOURCE": "csv",
           "SYMBOLS": ",".join(SYMBOLS), "LOG_LEVEL": "WARNING"}
    env.pop("DATABASE_URL", None)
    env.pop("REDIS_URL", None)
    for key in ("MODEL_STORE_DIR", "MARKET_DATA_SOURCE", "SYMBOLS"):
        os.environ[key] = env[key]
    os.environ.pop("DATABASE_URL", None)
    os.environ.pop("REDIS_URL", None)
    from app.core.config import reset_settings

    reset_settings()
    from sqlmodel import SQLModel

    import app.tables  # noqa: F401
    from app.core.db import get_engine
    from app.core.redis import get_redis, redis_url
    from app.data.candles import store_candles
    from app.data.simulator import MarketSimulator
    from app.services.cycle import get_cycle, start_cycle

    SQLModel.metadata.create_all(get_engine())
    frames = MarketSimulator(42).generate(SYMBOLS, 1_700_000_000_000 // 60_000 * 60_000, int(days * 1440))
    for symbol, frame in frames.items():
        store_candles(symbol, frame, "simulated")
    get_redis()
    env["REDIS_URL"] = redis_url()  # the workers share this run's embedded Redis
    options: dict = {"window_days": days}
    if folds is not None:
        from app.services.cycle.definitions import load_definitions

        options["definitions"] = [{**d, "walk_forward_folds": folds} for d in load_definitions()]
    cycle = start_cycle("cli", options)
    procs = [
        subprocess.Popen([sys.executable, "-c", WORKER], cwd=ROOT, env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(workers)
    ]
    while get_cycle(cycle.id).status in ("queued", "running"):
        time.sleep(0.5)
        if all(p.poll() is not None for p in procs) and get_cycle(cycle.id).status in ("queued", "running"):
            time.sleep(2)
            if get_cycle(cycle.id).status in ("queued", "running"):
                raise SystemExit(f"workers exited but the cycle is {get_cycle(cycle.id).stage}")
    for p in procs:  # the cycle is over: a warm shutdown of each worker (SIGTERM), killed if it hangs
        p.terminate()
    for p in procs:
        try:
            p.wait(timeout=60)
        except subprocess.TimeoutExpired:
            p.kill()
    done = get_cycle(cycle.id)
    from app.core.redis import shutdown_embedded

    shutdown_embedded()  # this run's embedded Redis: nothing is left running after the benchmark
    jobs = done.timings.get("jobs", {})
    compute = sum(j["seconds"] for j in jobs.values())
    wall = done.finished_ts.timestamp() - float(done.timings["started_at"])
    return {
        "workers": workers, "status": done.status, "wall_s": round(wall, 2), "compute_s": round(compute, 2),
        "overhead": round(wall / (compute / workers) - 1.0, 4),
        "jobs": {k: round(v["seconds"], 2) for k, v in jobs.items()},
        "cpu_s": {k: round(v.get("cpu_seconds", 0.0), 3) for k, v in jobs.items() if k.startswith("build:")},
        "errors": done.errors,
    }


def _one(root: Path, workers: int, days: float, folds: int | None) -> dict:
    """One run in its own process (fresh settings, engines and Redis), on the code under `root`."""
    command = [sys.executable, str(root / "bench" / "cycle.py"), "--days", str(days), "--one", str(workers)]
    if folds is not None:
        command += ["--folds", str(folds)]
    out = subprocess.run(command, cwd=root, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _report(label: str, r: dict) -> None:
    print(f"{label}: {r['workers']} worker(s): {r['status']}, wall {r['wall_s']} s, sum of job compute "
          f"{r['compute_s']} s, overhead {100 * r['overhead']:.1f}%", flush=True)
    print("   jobs:", r["jobs"], flush=True)


def _checkout(ref: str) -> Path:
    target = Path(tempfile.mkdtemp(prefix="bench-cycle-before-"))
    archive = subprocess.run(["git", "archive", ref], cwd=ROOT, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=float, default=7.0)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--before", help="git revision to compare against (run first, same interpreter)")
    parser.add_argument("--folds", type=int, nargs="+", help="walk-forward folds of every definition")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one is not None:
        print(json.dumps(run(args.one, args.days, args.folds[0] if args.folds else None)))
        return
    before = {}
    if args.before:
        old_root = _checkout(args.before)
        try:
            for n in args.workers:
                before[n] = _one(old_root, n, args.days, None)
                _report(f"before ({args.before})", before[n])
        finally:
            shutil.rmtree(old_root, ignore_errors=True)
    for folds in args.folds or [None]:
        results = []
        for n in args.workers:
            results.append(_one(ROOT, n, args.days, folds))
            _report("this tree" + ("" if folds is None else f", {folds} folds"), results[-1])
            if n in before:
                print(f"   wall ratio to before: {results[-1]['wall_s'] / before[n]['wall_s']:.2f}x, compute "
                      f"ratio {results[-1]['compute_s'] / before[n]['compute_s']:.2f}x", flush=True)
        if len(results) >= 2:
            print(f"speed-up {results[0]['workers']} -> {results[1]['workers']} workers: "
                  f"{results[0]['wall_s'] / results[1]['wall_s']:.2f}x")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
