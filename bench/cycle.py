"""Benchmark: one full default cycle (config/models.yaml) on 3 symbols x 7 days of 1m candles,
with 1 and with 2 worker processes (`mlpipe worker --burst`, job modules preloaded).

Each job runs on one thread: every worker gets OMP_NUM_THREADS=1, MKL_NUM_THREADS=1,
OPENBLAS_NUM_THREADS=1 (xgboost, numpy/BLAS and torch's intra-op pool all follow it; scikit-learn
models use n_jobs=1 by default). Each run gets its own SQLite database, store and embedded Redis, and the
same simulated candles; the catch-up ingest is off (MARKET_DATA_SOURCE=csv), so both runs do equal work.

Reported: wall time (first cycle job started -> cycle finished), the sum of the jobs' own compute times
(measured inside each job), overhead = wall / (sum / workers) - 1 for 1 worker, and speed-up.

    .venv/bin/python bench/cycle.py [--days 7] [--workers 1 2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SYMBOLS = ["BTC-USDT", "ETH-USDT", "XRP-USDT"]
# `mlpipe worker --burst`, with the job modules imported first: RQ forks a work-horse per job, so what the
# parent imported (torch, xgboost, sklearn: ~2 s) is not paid again by every job.
WORKER = (
    "import sys; import workers.cycle_jobs, app.services.cycle.build, app.services.cycle.drift, "
    "app.services.cycle.rank, app.ml; from app.cli import main; "
    "sys.argv = ['mlpipe', 'worker', '--burst']; main()"
)
THREAD_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}


def run(workers: int, days: float) -> dict:
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
    cycle = start_cycle("cli", {"window_days": days})
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
    for p in procs:
        p.wait(timeout=60)
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
        "errors": done.errors,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=float, default=7.0)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one is not None:
        print(json.dumps(run(args.one, args.days)))
        return
    results = []
    for n in args.workers:  # each run in its own process: fresh settings, engines and Redis
        out = subprocess.run([sys.executable, __file__, "--days", str(args.days), "--one", str(n)],
                             cwd=ROOT, capture_output=True, text=True, check=True)
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
        r = results[-1]
        print(f"{n} worker(s): {r['status']}, wall {r['wall_s']} s, sum of job compute {r['compute_s']} s, "
              f"overhead {100 * r['overhead']:.1f}%", flush=True)
        print("   jobs:", r["jobs"], flush=True)
    if len(results) >= 2:
        print(f"speed-up {results[0]['workers']} -> {results[1]['workers']} workers: "
              f"{results[0]['wall_s'] / results[1]['wall_s']:.2f}x")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
