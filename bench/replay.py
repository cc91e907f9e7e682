"""Benchmark: `mlpipe replay` on simulated candles with 1 and with 2 worker processes, in one run.

Each run gets its own temporary store (SQLite, and the embedded Redis unless REDIS_URL is set) with the
same simulated candles, and replays the same steps with the same definitions. Reported: wall time of the
replay (copy, every step's cycle, scoring, report), the speed-up of 2 workers over 1, and the peak RSS of
the replay's processes (the largest worker, and this driver).

    .venv/bin/python bench/replay.py                        # the issue's size: 3 symbols, 30 days, 12 h
    .venv/bin/python bench/replay.py --days 4 --window-days 2 --one-per-kind   # a quick look
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SYMBOLS = ["BTC-USDT", "ETH-USDT", "XRP-USDT"]
START_MS = 1_700_000_000_000 // 60_000 * 60_000
DAY_MS = 86_400_000

_RUN = """
import json, os, resource, sys, time
sys.path.insert(0, {root!r})
from app.services.bootstrap import migrate
from app.data.candles import store_candles
from app.data.simulator import MarketSimulator
from app.services.replay import run_replay
spec = json.loads(sys.argv[1])
migrate()
frames = MarketSimulator(7).generate(spec["symbols"], spec["start_ms"], int(spec["days_total"] * 1440))
for symbol, frame in frames.items():
    store_candles(symbol, frame, "simulated")
started = time.perf_counter()
report = run_replay(spec)
wall = time.perf_counter() - started
rss = {{who: round(resource.getrusage(what).ru_maxrss / 1024, 1)
       for who, what in (("driver_rss_mb", resource.RUSAGE_SELF),
                         ("workers_rss_mb", resource.RUSAGE_CHILDREN))}}
print(json.dumps({{"wall_s": round(wall, 2), "steps": len(report["steps"]), **rss}}))
"""


def one_run(workers: int, args: argparse.Namespace, definitions: list[dict]) -> dict:
    store = Path(tempfile.mkdtemp(prefix=f"mlpipe-bench-replay-{workers}-"))
    env = {**os.environ, "MODEL_STORE_DIR": str(store), "MARKET_DATA_SOURCE": "csv", "LOG_LEVEL": "WARNING",
           "OMP_NUM_THREADS": "1"}
    env.pop("DATABASE_URL", None)
    first = START_MS + int(args.window_days + 1) * DAY_MS
    spec = {"replay_id": f"bench{workers}", "symbols": SYMBOLS[: args.symbols], "start_ms": START_MS,
            "from_ms": first, "to_ms": first + int(args.days * DAY_MS), "every_hours": 12,
            "definitions": definitions, "window_days": args.window_days, "workers": workers,
            "days_total": args.window_days + 2 + args.days + 1}
    done = subprocess.run([sys.executable, "-c", _RUN.format(root=str(ROOT)), json.dumps(spec)], env=env,
                          capture_output=True, text=True, cwd=ROOT)
    if done.returncode != 0:
        raise SystemExit(done.stderr[-3000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--days", type=float, default=30, help="replayed days (steps every 12 h)")
    parser.add_argument("--window-days", type=float, default=7)
    parser.add_argument("--symbols", type=int, default=3)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--one-per-kind", action="store_true", help="the first definition of each type")
    args = parser.parse_args()
    import yaml

    definitions = yaml.safe_load((ROOT / "config/models.yaml").read_text())["models_to_train"]
    if args.one_per_kind:
        first: dict[str, dict] = {}
        for definition in definitions:
            first.setdefault(definition["type"], definition)
        definitions = list(first.values())
    results = {w: one_run(w, args, definitions) for w in args.workers}
    print(f"replay: {args.symbols} symbols, {args.days:g} days every 12 h, window {args.window_days:g} d, "
          f"{len(definitions)} definitions")
    print("| workers | steps | wall s | speed-up | peak RSS worker MB | peak RSS driver MB |")
    print("|---|---|---|---|---|---|")
    base = results[args.workers[0]]["wall_s"]
    for workers, r in results.items():
        print(f"| {workers} | {r['steps']} | {r['wall_s']:.1f} | {base / r['wall_s']:.2f}x | "
              f"{r['workers_rss_mb']:.0f} | {r['driver_rss_mb']:.0f} |")


if __name__ == "__main__":
    main()
