"""How cost grows with the number of symbols, on simulated candles; growth reported as exponents.

    .venv/bin/python bench/scale.py                      # all three parts, short runs
    .venv/bin/python bench/scale.py --part cycle --days 7 --symbols 3 10 30

- cycle: one full default cycle (config/models.yaml, bench/cycle.py's harness) for 3, 10 and 30 symbols
  with 1 and 2 workers: wall time, and the peak RSS of the largest worker or job process.
- api: a direction champion and 3, 30, 300 symbols of stored candles; the API under uvicorn, each symbol
  asked once (its features computed and cached), then POST /predict p50 cycling over all of them, and the
  API process's RSS.
- ingest: one ingest tick (topping up each symbol's newest minutes) for 30 symbols through a real
  ccxt.binance instance whose HTTP entry point serves Binance's wire format (exchangeInfo and klines
  synthesized as tests/fixtures/exchange does), ccxt's own rate limiter on: wall time, requests, and the
  request weight per minute against Binance's 6000/min limit.

Exponent a: the least-squares slope of log(cost) on log(symbols), cost ~ symbols^a.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
KEY = "mlp_bench_scale_key_0123456789ab"


def exponent(xs: list[float], ys: list[float]) -> float:
    lx, ly = [math.log(x) for x in xs], [math.log(y) for y in ys]
    mx, my = statistics.fmean(lx), statistics.fmean(ly)
    return sum((a - mx) * (b - my) for a, b in zip(lx, ly, strict=True)) / sum((a - mx) ** 2 for a in lx)


def symbols(n: int) -> list[str]:
    """BTC-USDT first: the cross-asset definitions read it (without it they fail and the cycle is partial)."""
    return ["BTC-USDT", *(f"S{i:03d}-USDT" for i in range(1, n))]


# ---- cycle -------------------------------------------------------------------------------------------
def cycle_one(n: int, workers: int, days: float) -> dict:
    """One cycle in this (fresh) process; peak RSS of the largest descendant (workers, work horses)."""
    from bench import cycle

    cycle.SYMBOLS[:] = symbols(n)
    result = cycle.run(workers, days)
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {"symbols": n, "workers": workers, "wall_s": result["wall_s"], "compute_s": result["compute_s"],
            "status": result["status"], "peak_rss_mb": round(peak_kb / 1024, 1),
            "cpu_s": result.get("cpu_s", {})}


def part_cycle(ns: list[int], days: float, worker_counts: tuple[int, ...] = (1, 2)) -> None:
    rows = []
    for workers in worker_counts:
        for n in ns:
            out = subprocess.run([sys.executable, __file__, "--cycle-one", str(n), str(workers), str(days)],
                                 cwd=ROOT, capture_output=True, text=True)
            if out.returncode != 0:  # say why, and go on with the other sizes
                print(f"cycle: {n:3d} symbols, {workers} worker(s): failed (exit {out.returncode}):\n"
                      + "\n".join(out.stderr.strip().splitlines()[-8:]), flush=True)
                continue
            row = json.loads(out.stdout.strip().splitlines()[-1])
            rows.append(row)
            print(f"cycle: {n:3d} symbols x {days:g} d, {workers} worker(s): {row['status']}, wall "
                  f"{row['wall_s']} s, compute {row['compute_s']} s, peak RSS {row['peak_rss_mb']} MB",
                  flush=True)
    for workers in worker_counts:
        mine = [r for r in rows if r["workers"] == workers]
        if len(mine) < 2:
            continue
        # CPU seconds per build, summed by model type: the work itself, whatever the machine's load
        families = sorted({k for r in mine for k in r["cpu_s"]})
        for family in families:
            cpu = [r["cpu_s"].get(family, 0.0) for r in mine]
            if all(c > 0 for c in cpu):
                print(f"  {workers} worker(s) {family:30} CPU s " + " ".join(f"{c:.2f}" for c in cpu)
                      + f"  ~ symbols^{exponent([r['symbols'] for r in mine], cpu):.2f}")
        total = [sum(r["cpu_s"].values()) for r in mine]
        print(f"  {workers} worker(s) all builds CPU s " + " ".join(f"{c:.2f}" for c in total)
              + f"  ~ symbols^{exponent([r['symbols'] for r in mine], total):.2f}")
        xs = [r["symbols"] for r in mine]
        print(f"cycle, {workers} worker(s): wall ~ symbols^{exponent(xs, [r['wall_s'] for r in mine]):.2f}, "
              f"peak RSS ~ symbols^{exponent(xs, [r['peak_rss_mb'] for r in mine]):.2f}")


# ---- api ---------------------------------------------------------------------------------------------
def _api_setup(names: list[str], train: bool) -> None:
    """Store 600 candles for each of `names` (the warm-up needs 440); first time, train the champion."""
    from sqlmodel import SQLModel

    import app.tables  # noqa: F401
    from app.core.db import get_engine
    from app.data.candles import store_candles
    from app.data.frames import candles_frame
    from app.data.simulator import MarketSimulator

    start = 1_767_225_600_000
    if train:
        from app.ml.kinds import DirectionPredictor
        from app.services.models import save_model, set_status

        SQLModel.metadata.create_all(get_engine())
        raw = MarketSimulator(11).generate(["BTC-USDT"], start, 2000)
        model = DirectionPredictor(horizon=3).train_on({"BTC-USDT": candles_frame(raw["BTC-USDT"])},
                                                       data_source="simulated")
        set_status(save_model(model, name="direction_scale").name, "active", "benchmark")
    for symbol, frame in MarketSimulator(12).generate(names, start, 600).items():
        store_candles(symbol, frame, "simulated")


def _api_measure(url: str, pid: int, n: int, rounds: int) -> dict:
    import httpx
    import psutil

    async def run() -> list[float]:
        async with httpx.AsyncClient(base_url=url, headers={"X-API-Key": KEY}, timeout=30) as http:
            for s in symbols(n):  # each symbol's features computed once
                r = await http.post("/predict/direction", json={"symbol": s})
                assert r.status_code == 200, r.text
            times = []
            for i in range(rounds):
                t = time.perf_counter()
                r = await http.post("/predict/direction", json={"symbol": symbols(n)[i % n]})
                times.append(time.perf_counter() - t)
            return times

    times = asyncio.run(run())
    return {"symbols": n, "p50_ms": round(1000 * statistics.median(times), 3),
            "rss_mb": round(psutil.Process(pid).memory_info().rss / 2**20, 1)}


def part_api(ns: list[int], rounds: int) -> None:
    """One database and embedded Redis; the symbols are added size by size, a fresh server for each."""
    import httpx

    store = Path(tempfile.mkdtemp(prefix="mlpipe-scale-api-"))
    os.environ.update(MODEL_STORE_DIR=str(store), PREDICT_API_KEY=KEY, LOG_LEVEL="WARNING")
    os.environ.pop("DATABASE_URL", None)
    os.environ.pop("REDIS_URL", None)
    from app.core.config import reset_settings

    reset_settings()
    from app.core.redis import redis_url, shutdown_embedded
    from bench.predict import _free_port

    rows, stored = [], 0
    try:
        for n in ns:
            _api_setup(symbols(n)[stored:], train=stored == 0)
            stored = n
            env = {**os.environ, "REDIS_URL": redis_url(), "PYTHONPATH": str(ROOT)}
            port = _free_port()
            server = subprocess.Popen(
                [sys.executable, "-m", "uvicorn", "app.main:app", "--port", str(port), "--log-level",
                 "warning", "--no-access-log"], cwd=ROOT, env=env,
            )
            url = f"http://127.0.0.1:{port}"
            try:
                for _ in range(300):
                    try:
                        if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                            break
                    except httpx.TransportError:
                        time.sleep(0.2)
                row = _api_measure(url, server.pid, n, rounds)
            finally:
                server.terminate()
                server.wait(timeout=20)
            rows.append(row)
            print(f"api: {n:3d} symbols: predict p50 {row['p50_ms']} ms, API RSS {row['rss_mb']} MB",
                  flush=True)
    finally:
        shutdown_embedded()
    xs = [r["symbols"] for r in rows]
    print(f"api: p50 ~ symbols^{exponent(xs, [r['p50_ms'] for r in rows]):.2f}, "
          f"RSS ~ symbols^{exponent(xs, [r['rss_mb'] for r in rows]):.2f}")


# ---- ingest ------------------------------------------------------------------------------------------
class WireBinance:
    """`Exchange.fetch` for a real ccxt.binance: exchangeInfo for `names`, klines from MarketSimulator in
    Binance's 12-field wire format for the asked startTime/limit (as tests/fixtures/exchange/record.py)."""

    def __init__(self, names: list[str], start: int, bars: int) -> None:
        from app.data.simulator import MarketSimulator

        info = json.loads((ROOT / "tests" / "fixtures" / "exchange" / "exchangeInfo.json").read_text())
        template = next(s for s in info["symbols"] if s["symbol"] == "BTCUSDT")
        info["symbols"] = [
            {**template, "symbol": n.replace("-", ""), "baseAsset": n.split("-")[0]} for n in names
        ]
        self.info = info
        frames = MarketSimulator(5).generate(names, start, bars)
        self.frames = {n.replace("-", ""): f for n, f in frames.items()}
        self.requests = 0
        self.weight = 0

    def __call__(self, url: str, method: str = "GET", headers=None, body=None):  # noqa: ANN001, ANN204
        from urllib.parse import parse_qsl, urlsplit

        self.requests += 1
        parts = urlsplit(url)
        if parts.path.endswith("/exchangeInfo"):
            self.weight += 20
            return self.info
        query = dict(parse_qsl(parts.query))
        self.weight += 2  # klines, limit <= 100 (Binance's request weight)
        frame = self.frames[query["symbol"]]
        rows = frame[frame["ts"] >= int(query["startTime"])].head(int(query.get("limit", 500)))
        return [[int(r.ts), f"{r.open:.8f}", f"{r.high:.8f}", f"{r.low:.8f}", f"{r.close:.8f}",
                 f"{r.volume:.8f}", int(r.ts) + 59_999, "0", 100, "0", "0", "0"] for r in rows.itertuples()]


def ingest_one(n: int) -> dict:
    from sqlmodel import SQLModel

    import app.tables  # noqa: F401
    from app.core.db import get_engine
    from app.data.candles import store_candles
    from app.data.sources.exchange import ExchangeSource
    from app.services.ingest import ingest

    SQLModel.metadata.create_all(get_engine())
    names = symbols(n)
    start, bars = 1_767_225_600_000, 300
    wire = WireBinance(names, start, bars)
    for name in names:  # stored up to 3 minutes before "now": the tick tops up the newest minutes
        frame = wire.frames[name.replace("-", "")]
        store_candles(name, frame.iloc[: bars - 4], "exchange")
    now = start + (bars - 1) * 60_000  # the last simulated candle is still forming
    source = ExchangeSource("binance", page_limit=100)
    source.client.fetch = wire
    source.client.load_markets()
    wire.requests = wire.weight = 0
    t = time.perf_counter()
    reports = ingest("exchange", names, days=1, now_ms=now, exchange=source)
    wall = time.perf_counter() - t
    return {"symbols": n, "wall_s": round(wall, 3), "requests": wire.requests,
            "added": sum(r.added for r in reports), "weight": wire.weight,
            "rate_limit_ms": source.client.rateLimit}


def part_ingest(ns: list[int]) -> None:
    walls = [_ingest_size(n) for n in ns]
    print(f"ingest tick: wall ~ symbols^{exponent(ns, walls):.2f}")


def _ingest_size(n: int) -> float:
    store = Path(tempfile.mkdtemp(prefix="mlpipe-scale-ingest-"))
    env = {**os.environ, "MODEL_STORE_DIR": str(store), "LOG_LEVEL": "WARNING",
           "DATABASE_URL": f"sqlite:///{store}/ingest.db"}
    out = subprocess.run([sys.executable, __file__, "--ingest-one", str(n)], env=env, cwd=ROOT,
                         capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(out.stderr[-3000:])
    row = json.loads(out.stdout.strip().splitlines()[-1])
    per_minute = row["weight"] * 60 / max(row["wall_s"], 60)
    print(f"ingest tick: {n} symbols through ccxt.binance (rate limiter on, {row['rate_limit_ms']} ms "
          "apart): "
          f"wall {row['wall_s']} s, {row['requests']} requests, {row['added']} candles added, request weight "
          f"{row['weight']} per tick = {per_minute:.0f}/min against Binance's 6000/min", flush=True)
    return float(row["wall_s"])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--part", choices=["cycle", "api", "ingest", "all"], default="all")
    parser.add_argument("--days", type=float, default=1.0, help="days of candles per symbol in the cycle")
    parser.add_argument("--symbols", type=int, nargs="+", default=[3, 10, 30], help="cycle sizes")
    parser.add_argument("--cycle-workers", type=int, nargs="+", default=[1, 2], help="worker counts")
    parser.add_argument("--api-symbols", type=int, nargs="+", default=[3, 30, 300])
    parser.add_argument("--rounds", type=int, default=400, help="predict calls per API size")
    parser.add_argument("--cycle-one", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--ingest-one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.cycle_one:
        n, workers, days = args.cycle_one
        print(json.dumps(cycle_one(int(n), int(workers), float(days))))
        return
    if args.ingest_one:
        print(json.dumps(ingest_one(args.ingest_one)))
        return
    if args.part in ("ingest", "all"):
        part_ingest([3, 10, 30])
    if args.part in ("cycle", "all"):
        part_cycle(args.symbols, args.days, tuple(args.cycle_workers))
    if args.part in ("api", "all"):
        part_api(args.api_symbols, args.rounds)  # last: it sets this process's environment


if __name__ == "__main__":
    main()
