"""Check the project end to end against real exchange candles, in a throw-away store.

Usage: .venv/bin/python scripts/real_data_check.py FOLDER [--symbols BTC-USDT,ETH-USDT,XRP-USDT]
                                                   [--keep] [--no-cycle]

FOLDER holds `<BASE>-<QUOTE>_1m.csv` candle files (any format `mlpipe ingest --source csv` reads) and
optionally `_5m` ones. Everything runs in a new temporary MODEL_STORE_DIR with embedded SQLite and Redis
(DATABASE_URL / REDIS_URL are ignored), through the real CLI plus the Python API:

1. ingest: `mlpipe ingest` per 1m file (rows, rejections, gaps vs the file itself), a re-run (0 added),
   the 5m files (must be refused: only 1m is stored), a halted market (flat, zero-volume 1m candles).
2. features: FeatureManager at 1m, 5m and 1h over all stored history: NaN/inf after warm-up, holes, RSI,
   NATR and ADX ranges, and short-window vs full-history agreement (DESIGN 3).
3. models: `mlpipe train` for the five kinds with default settings (newest 7 days of the stored candles),
   holdout metrics beside the baselines, skill, calibration gap, the direction trading backtest; then a
   cycle (`mlpipe cycle` + `mlpipe worker --burst`, MARKET_DATA_SOURCE=csv) and `mlpipe models`.

Prints a compact report and a list of checks; exits 1 when a check fails.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MINUTE_MS = 60_000
KINDS = ("direction", "risk", "price", "momentum", "volatility")
CHECKS: list[tuple[str, bool, str]] = []


def check(name: str, ok: bool, detail: str = "") -> bool:
    CHECKS.append((name, bool(ok), detail))
    return bool(ok)


def utc(ms: float | int | None) -> str:
    return "-" if ms is None else pd.Timestamp(int(ms), unit="ms", tz="UTC").strftime("%Y-%m-%d %H:%M")


def table(rows: list[dict[str, Any]], title: str) -> None:
    """Plain fixed-width table (no rich: the report is meant to be pasted)."""
    print(f"\n## {title}")
    if not rows:
        print("(nothing)")
        return
    cols = list(rows[0])
    text = [[str(r.get(c, "")) for c in cols] for r in rows]
    width = [max(len(c), *(len(t[i]) for t in text)) for i, c in enumerate(cols)]
    print("  ".join(c.ljust(w) for c, w in zip(cols, width, strict=True)))
    for t in text:
        print("  ".join(v.ljust(w) for v, w in zip(t, width, strict=True)))


def fmt(x: Any, digits: int = 4) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:.{digits}g}" if abs(x) < 1e-3 or abs(x) >= 1e4 else f"{x:.{digits}f}"
    return str(x)


class Cli:
    """Runs `mlpipe` in the temporary store; remembers how long each call took."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.exe = str(Path(sys.executable).parent / "mlpipe")

    def __call__(self, *args: str, extra_env: dict[str, str] | None = None, timeout: float = 1800):
        env = {**self.env, **(extra_env or {})}
        started = time.perf_counter()
        proc = subprocess.run([self.exe, *args], env=env, cwd=ROOT, capture_output=True, text=True,
                              timeout=timeout, check=False)
        proc.seconds = time.perf_counter() - started  # type: ignore[attr-defined]
        return proc


# --- 1. ingest ------------------------------------------------------------------------------------------
def file_facts(path: Path, step_ms: int) -> dict[str, Any]:
    """What the file itself says: rows, range and holes, computed here without the importer's gap code."""
    from app.data.sources.csv_source import read_candles_csv

    frame = read_candles_csv(path)
    ts = np.unique(frame["ts"].dropna().to_numpy(dtype="int64"))
    diffs = np.diff(ts)
    holes = [(int(ts[i] + step_ms), int(ts[i + 1] - step_ms), int(diffs[i] // step_ms - 1))
             for i in np.flatnonzero(diffs > step_ms)]
    flat = ((frame["open"] == frame["high"]) & (frame["high"] == frame["low"])
            & (frame["low"] == frame["close"]) & (frame["volume"] == 0))
    return {"frame": frame, "rows": len(frame), "first": int(ts[0]), "last": int(ts[-1]), "holes": holes,
            "missing": sum(h[2] for h in holes), "flat": frame[flat]}


def parse_summary(stdout: str, symbol: str) -> dict[str, Any] | None:
    """The symbol's row of the `mlpipe ingest` summary table."""
    for line in stdout.splitlines():
        cells = [c.strip() for c in line.split("│")]
        if len(cells) >= 8 and cells[1] == symbol:
            gaps = re.match(r"(\d+): (\d+) bars", cells[5])
            return {"fetched": int(cells[2]), "added": int(cells[3]), "rejected": cells[4],
                    "gap_count": int(gaps.group(1)) if gaps else 0,
                    "gap_bars": int(gaps.group(2)) if gaps else 0}
    return None


def one_line(proc: Any) -> str:
    text = (proc.stdout + "\n" + proc.stderr).strip()
    noise = ("[info", "[warning", "(Background on this error", "[SQL:", "[parameters:")
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not any(n in ln for n in noise)]
    errors = [ln for ln in lines if re.match(r"^[\w.]*(Error|Exception)\b.*:", ln)]
    return (errors or lines or [""])[-1]


def step_ingest(cli: Cli, folder: Path, symbols: list[str], work: Path) -> dict[str, dict[str, Any]]:
    from app.data.candles import count_candles, load_candles
    from app.data.frames import index_ms
    from app.data.gaps import find_gaps
    from app.data.sources.csv_source import infer_symbol

    files_1m = {s: folder / f"{s}_1m.csv" for s in symbols}
    missing = [str(p) for p in files_1m.values() if not p.is_file()]
    if missing:
        sys.exit(f"missing 1m files: {missing}")

    # A fresh store before `mlpipe migrate`: a clear message (or it just works), never a traceback.
    probe = work / "PROBE-USDT_1m.csv"
    first_file = next(iter(files_1m.values()))
    probe.write_text("".join(first_file.open().readlines()[:4]))
    proc = cli("ingest", "--source", "csv", "--symbols", "PROBE-USDT", "--path", str(probe))
    check("ingest before `mlpipe migrate`: no traceback", "Traceback" not in proc.stderr,
          f"exit {proc.returncode}: {one_line(proc)[:150]}")
    proc = cli("migrate")
    check("mlpipe migrate", proc.returncode == 0, one_line(proc)[:120])

    rows, facts_by = [], {}
    for symbol, path in files_1m.items():
        facts = facts_by[symbol] = file_facts(path, MINUTE_MS)
        proc = cli("ingest", "--source", "csv", "--symbols", symbol, "--path", str(path))
        summary = parse_summary(proc.stdout, symbol) or {}
        stored = load_candles(symbol)
        store_gaps = find_gaps(index_ms(stored.index), "1m")
        rerun = cli("ingest", "--source", "csv", "--symbols", symbol, "--path", str(path))
        again = parse_summary(rerun.stdout, symbol) or {}
        same_gaps = [(g.start_ts, g.end_ts, g.missing_bars) for g in store_gaps] == facts["holes"]
        ok = (proc.returncode == 0 and summary.get("added") == facts["rows"] == len(stored)
              and summary.get("gap_bars") == facts["missing"] and same_gaps)
        check(f"ingest {symbol}: all rows stored, gaps as in the file", ok,
              f"exit {proc.returncode}, added {summary.get('added')}, file {facts['rows']}, stored "
              f"{len(stored)}, gaps {summary.get('gap_count')}/{summary.get('gap_bars')} bars vs file "
              f"{len(facts['holes'])}/{facts['missing']}")
        check(f"re-ingest {symbol}: 0 added", rerun.returncode == 0 and again.get("added") == 0,
              f"added {again.get('added')}")
        rows.append({
            "symbol": symbol, "file rows": facts["rows"], "added": summary.get("added"),
            "rejected": summary.get("rejected"), "re-run added": again.get("added"),
            "first": utc(facts["first"]), "last": utc(facts["last"]),
            "gaps (cli)": f"{summary.get('gap_count')}: {summary.get('gap_bars')} bars",
            "holes (store)": "; ".join(f"{utc(a)}..{utc(b)[11:]} ({n})" for a, b, n in
                                       [(g.start_ts, g.end_ts, g.missing_bars) for g in store_gaps]),
            "ingest s": f"{proc.seconds:.1f}", "re-run s": f"{rerun.seconds:.1f}",
        })
    table(rows, "1. ingest (mlpipe ingest --source csv, one 1m file per symbol)")

    # Higher-timeframe files must be refused with a clear message, the store untouched.
    refused = []
    for path in sorted(folder.glob("*.csv")):
        symbol, timeframe = infer_symbol(path)
        if timeframe in (None, "1m") or symbol is None:
            continue
        before = count_candles(symbol)
        proc = cli("ingest", "--source", "csv", "--symbols", symbol, "--path", str(path))
        message = one_line(proc)
        ok = proc.returncode == 2 and "1m" in message and count_candles(symbol) == before
        check(f"{path.name} refused (only 1m stored)", ok, f"exit {proc.returncode}: {message[:110]}")
        refused.append({"file": path.name, "exit": proc.returncode, "message": message[:120]})
        facts = file_facts(path, int(pd.Timedelta(timeframe).total_seconds() * 1000))
        if len(facts["flat"]):
            from app.data.validation import validate_candles

            result = validate_candles(facts["frame"], timeframe=timeframe)
            kept = set(result.good["ts"].astype("int64")) >= set(facts["flat"]["ts"].astype("int64"))
            check(f"{path.name}: {len(facts['flat'])} flat zero-volume candles pass validation", kept)
    if refused:
        proc = cli("ingest", "--source", "csv", "--path", str(folder))
        refused.append({"file": f"{folder.name}/ (whole folder)", "exit": proc.returncode,
                        "message": one_line(proc)[:120]})
        table(refused, "1b. higher-timeframe files (must be refused)")

    # A halted market in 1m terms: flat candles with zero volume, at real halt times when the 5m files
    # have them; each stays flat for 5 minutes.
    flats = [file_facts(p, 5 * MINUTE_MS)["flat"] for p in sorted(folder.glob("*_5m.csv"))[:1]]
    base = flats[0] if flats and len(flats[0]) else facts_by[symbols[0]]["frame"].iloc[:3].assign(
        high=lambda f: f["open"], low=lambda f: f["open"], close=lambda f: f["open"], volume=0.0)
    halt_rows = [(int(r.ts) + k * MINUTE_MS, r.open, r.open, r.open, r.open, 0.0)
                 for r in base.itertuples() for k in range(5)]
    halt = pd.DataFrame(halt_rows, columns=["timestamp_ms", "open", "high", "low", "close", "volume"])
    halt = halt.drop_duplicates("timestamp_ms").sort_values("timestamp_ms")
    halt_file = work / "HALT-USDT_1m.csv"
    halt.to_csv(halt_file, index=False)
    proc = cli("ingest", "--source", "csv", "--symbols", "HALT-USDT", "--path", str(halt_file))
    summary = parse_summary(proc.stdout, "HALT-USDT") or {}
    check("halted market: flat zero-volume 1m candles accepted",
          proc.returncode == 0 and summary.get("added") == len(halt) and summary.get("rejected") == "0",
          f"{len(halt)} rows, added {summary.get('added')}, rejected {summary.get('rejected')}")
    return facts_by


# --- 2. features ----------------------------------------------------------------------------------------
def step_features(symbols: list[str], facts_by: dict[str, dict[str, Any]]) -> None:
    from app.data.candles import load_candles
    from app.data.frames import index_ms
    from app.features import FeatureManager, compute_features, required_warmup, resample
    from app.features.registry import CATALOGUE

    names = list(CATALOGUE)
    fm = FeatureManager()
    rows = []
    for timeframe in ("1m", "5m", "1h"):
        step = int(pd.Timedelta(timeframe).total_seconds() * 1000)
        for symbol in symbols:
            started = time.perf_counter()
            minutes = load_candles(symbol)
            candles = minutes if timeframe == "1m" else resample(minutes, timeframe)
            feats = fm.get_features(symbol, timeframe, names, lookback_bars=len(candles))
            seconds = time.perf_counter() - started
            values = feats.to_numpy(dtype="float64")
            nan, inf = int(np.isnan(values).sum()), int(np.isinf(values).sum())
            ms = index_ms(feats.index)
            holes = [int(d // step - 1) for d in np.diff(ms) if d > step]
            rsi, natr, adx = feats["rsi_14"], feats["natr_14"], feats["adx_14"]
            # Train/serve agreement: a 3-row window vs the full-history value, incl. right after holes.
            full = compute_features(candles, names)
            points = [candles.index[len(candles) * k // 6] for k in range(3, 6)]
            for start, _, _ in facts_by[symbol]["holes"]:
                at = candles.index.searchsorted(pd.Timestamp(start, unit="ms", tz="UTC"))
                points += list(candles.index[at: at + 2])
            worst = 0.0
            for point in points:
                end_ts = int(point.value // 1_000_000) + step - MINUTE_MS
                short = fm.get_features(symbol, timeframe, names, lookback_bars=3, end_ts=end_ts)
                ref = full.loc[short.index]
                diff = np.abs(short.to_numpy() - ref.to_numpy())
                scale = np.maximum(np.abs(ref.to_numpy()), 1e-9)
                worst = max(worst, float(np.nanmax(diff / scale)))
            plausible = (rsi.between(0, 100).all() and (natr >= 0).all() and natr.max() < 50
                         and adx.between(0, 100).all())
            check(f"features {symbol} {timeframe}: no NaN/inf after warm-up, plausible, short = full",
                  nan == 0 and inf == 0 and plausible and worst < 1e-6,
                  f"NaN {nan}, inf {inf}, max rel diff {worst:.1e}")
            rows.append({
                "tf": timeframe, "symbol": symbol, "rows": len(feats), "from": str(feats.index[0])[:16],
                "warm-up": required_warmup(names, timeframe), "NaN": nan, "inf": inf,
                "holes (bars)": ",".join(map(str, holes)) or "-",
                "rsi": f"{rsi.min():.1f}..{rsi.max():.1f}",
                "natr% min/med/max": f"{natr.min():.3f}/{natr.median():.3f}/{natr.max():.2f}",
                "adx": f"{adx.min():.0f}..{adx.max():.0f}",
                "|ret| p99.9": f"{feats['returns'].abs().quantile(0.999):.4f}",
                "short vs full": f"{worst:.0e}", "s": f"{seconds:.2f}",
            })
    table(rows, f"2. features ({len(names)} catalogue features; holes = runs of missing bars, bridged "
                "by the indicators)")


# --- 3. models ------------------------------------------------------------------------------------------
def model_row(record: Any, seconds: float) -> dict[str, Any]:
    perf, training = record.performance, record.training
    classifier = "accuracy" in perf
    metric = ("acc " + fmt(perf.get("accuracy"))) if classifier else ("rmse " + fmt(perf.get("rmse")))
    base = perf.get("baseline_accuracy") if classifier else perf.get("baseline_rmse")
    calib = perf.get("reliability") or perf.get("coverage") or {}
    extra = f"auc {fmt(perf.get('roc_auc'), 3)}" if classifier else f"r2 {fmt(perf.get('r2'), 3)}"
    return {
        "kind": record.kind, "model": record.name, "h": perf.get("horizon"),
        "train rows": training.get("data_points"), "holdout": perf.get("n"),
        "holdout span (UTC)": f"{str(perf.get('start'))[5:16]}..{str(perf.get('end'))[5:16]}",
        "metric": metric, "other": extra,
        "best baseline": f"{perf.get('baseline')} {fmt(base)}", "skill": fmt(perf.get("skill"), 3),
        "calib gap": fmt(calib.get("weighted_gap"), 3), "data_source": record.data_source,
        "s": f"{seconds:.1f}",
    }


def hour_diagnostic(symbols: list[str]) -> list[dict[str, Any]]:
    """With a 7-day window, time-of-day features let trees memorise one day's event at that hour."""
    from app.ml.registry import model_class_for
    from app.ml.training import model_from_definition

    rows = []
    for kind in ("risk", "volatility"):
        features = list(model_class_for(kind).default_features)
        for label, chosen in (("default", features), ("no hour_*", [f for f in features if "hour" not in f])):
            started = time.perf_counter()
            model = model_from_definition({"kind": kind, "features": chosen}).train(symbols)
            perf = model.performance_
            rows.append({"kind": kind, "features": label, "rmse": fmt(perf["rmse"]),
                         "best baseline": f"{perf['baseline']} {fmt(perf['baseline_rmse'])}",
                         "skill": fmt(perf["skill"], 3), "s": f"{time.perf_counter() - started:.1f}"})
    return rows


def step_models(cli: Cli, symbols: list[str], run_cycle: bool) -> None:
    from app.data.candles import last_candle_ts
    from app.services.models import get_model, list_models

    newest = min(last_candle_ts(s) for s in symbols)
    rows, trading = [], None
    for kind in KINDS:
        proc = cli("train", "--kind", kind, "--symbols", ",".join(symbols))
        match = re.search(r"saved (\S+) \(", proc.stdout)
        if proc.returncode != 0 or match is None:
            check(f"train {kind}", False, f"exit {proc.returncode}: {one_line(proc)[:150]}")
            continue
        record = get_model(match.group(1))
        perf = record.performance
        rows.append(model_row(record, proc.seconds))
        end = pd.Timestamp(perf["end"]).value // 1_000_000
        bar = MINUTE_MS * int(pd.Timedelta(record.training.get("timeframe", "1m")).total_seconds() // 60)
        check(f"train {kind}: holdout ends at the newest stored candles (not the wall clock)",
              end + (int(perf["horizon"]) + 5) * bar >= newest,
              f"holdout end {utc(end)}, newest stored {utc(newest)}")
        check(f"train {kind}: data_source recorded = source of the candles (csv)",
              record.data_source == "csv", f"recorded {record.data_source!r}")
        if kind == "direction":
            trading = perf.get("trading")
    table(rows, "3. mlpipe train (defaults, newest 7 days of the stored candles; skill = over the best "
                "baseline; calib gap = weighted |stated - observed| confidence or band coverage)")
    if trading:
        hold = trading.get("buy_and_hold", {})
        table([
            {"": "model", "return": f"{trading['total_return']:+.2%}", "sharpe": fmt(trading["sharpe"], 3),
             "max dd": f"{trading['max_drawdown']:.2%}", "hit rate": fmt(trading.get("hit_rate"), 3),
             "trades": trading["trades"], "bars": trading["bars"]},
            {"": "buy and hold", "return": f"{hold.get('total_return', 0):+.2%}",
             "sharpe": fmt(hold.get("sharpe"), 3), "max dd": f"{hold.get('max_drawdown', 0):.2%}",
             "hit rate": "-", "trades": "-", "bars": trading["bars"]},
        ], f"3b. direction trading backtest on the holdout (fees {trading['fee_bps']} bps + slippage "
           f"{trading['slippage_bps']} bps; equal weight over the symbols)")
    table(hour_diagnostic(symbols), "3c. diagnostic (Python API, not saved): risk and volatility with and "
          "without the hour_sin/hour_cos features")
    if not run_cycle:
        return

    cycle_env = {"MARKET_DATA_SOURCE": "csv", "SYMBOLS": ",".join(symbols)}
    queued = cli("cycle", extra_env=cycle_env)
    match = re.search(r"cycle ([0-9a-f]{8,}) queued", queued.stdout)
    if not check("mlpipe cycle queued", queued.returncode == 0 and match is not None, one_line(queued)[:120]):
        return
    worker = cli("worker", "--burst", extra_env=cycle_env, timeout=3600)
    check("mlpipe worker --burst", worker.returncode == 0,
          f"exit {worker.returncode} in {worker.seconds:.1f} s")
    shown = cli("cycle", "--show", match.group(1), extra_env=cycle_env)
    from app.services import cycle as cycles

    view = cycles.cycle_view(cycles.get_cycle(match.group(1)))
    progress = view["progress"]
    ok = sum(1 for p in progress.values() if p.get("state") == "succeeded")
    check("cycle succeeded, every definition built", view["status"] == "succeeded" and ok == len(progress),
          f"status {view['status']}, {ok}/{len(progress)} built; {len(view['errors'])} errors/warnings")
    table([{"definition": name, "state": p.get("state"), "model": p.get("model") or p.get("new_model") or "",
            "score": fmt(p.get("score"), 3), "s": p.get("seconds", ""),
            "note": str(p.get("error") or p.get("outcome") or "")[:60]} for name, p in progress.items()],
          f"3d. cycle {view['id'][:12]}: {view['status']} (queue {queued.seconds:.1f} s, worker "
          f"{worker.seconds:.1f} s, show exit {shown.returncode})")
    for error in view["errors"]:
        print(f"   {error.get('level', 'error')}: {error.get('stage')} {error.get('model') or ''} "
              f"{error.get('message')}")
    listed = cli("models", "--json")
    try:
        board = json.loads(listed.stdout)
    except json.JSONDecodeError:
        check("mlpipe models --json", False, one_line(listed)[:120])
        return
    records = {r.name: r for r in list_models()}
    order = {"active": 0, "candidate": 1, "superseded": 2, "archived": 3, "failed": 4}
    board.sort(key=lambda r: (order.get(r["status"], 9), -(r["score"] if r["score"] is not None else -1e9)))
    table([{"name": r["name"], "kind": r["kind"], "status": r["status"], "score": fmt(r["score"], 3),
            "baseline": r["baseline"], "data_source": getattr(records.get(r["name"]), "data_source", "?")}
           for r in board], f"3e. mlpipe models ({len(board)} models, {listed.seconds:.1f} s)")


# --- driver ---------------------------------------------------------------------------------------------
def shutdown_embedded_redis(store: Path) -> None:
    """The embedded server may outlive the CLI processes that shared it; stop it before removing the store."""
    settings = store / "redis" / "redis.db.settings"
    if not settings.is_file():
        return
    socket = json.loads(settings.read_text()).get("unixsocket")
    try:
        import redis

        redis.Redis(unix_socket_path=socket).shutdown(nosave=True)
    except Exception:  # noqa: BLE001 - the server closes the connection as it stops, or was gone already
        pass


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("folder", type=Path, help="folder of <BASE>-<QUOTE>_1m.csv (and _5m) files")
    parser.add_argument("--symbols", default=None, help="default: every symbol with a _1m file")
    parser.add_argument("--keep", action="store_true", help="keep the temporary store and print its path")
    parser.add_argument("--no-cycle", action="store_true", help="skip the cycle (train + models only)")
    args = parser.parse_args()
    folder = args.folder.resolve()
    if args.symbols:
        symbols = [s.strip().upper() for s in args.symbols.split(",") if s.strip()]
    else:
        symbols = sorted(p.name[: -len("_1m.csv")] for p in folder.glob("*_1m.csv"))
    if not symbols:
        sys.exit(f"no <SYMBOL>_1m.csv files in {folder}")

    work = Path(tempfile.mkdtemp(prefix="mlpipe-realcheck-"))
    store = work / "store"
    # Before anything imports app: a throw-away store, embedded SQLite and Redis, default data source.
    for name in ("DATABASE_URL", "REDIS_URL", "MARKET_DATA_SOURCE", "SYMBOLS"):
        os.environ.pop(name, None)
    os.environ["MODEL_STORE_DIR"] = str(store)
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    cli = Cli(dict(os.environ))
    print(f"# real-data check: {folder} ({', '.join(symbols)}); store {store}")
    timings = {}
    try:
        started = time.perf_counter()
        facts_by = step_ingest(cli, folder, symbols, work)
        timings["1 ingest"] = time.perf_counter() - started
        started = time.perf_counter()
        step_features(symbols, facts_by)
        timings["2 features"] = time.perf_counter() - started
        started = time.perf_counter()
        step_models(cli, symbols, run_cycle=not args.no_cycle)
        timings["3 models + cycle"] = time.perf_counter() - started
    finally:
        shutdown_embedded_redis(store)
        if args.keep:
            print(f"\nstore kept at {store}")
        else:
            shutil.rmtree(work, ignore_errors=True)

    table([{"step": k, "seconds": f"{v:.1f}"} for k, v in timings.items()], "timings")
    print("\n## checks")
    for name, ok, detail in CHECKS:
        print(f"{'PASS' if ok else 'FAIL'}  {name}{'  -- ' + detail if detail else ''}")
    failed = sum(1 for _, ok, _ in CHECKS if not ok)
    print(f"\n{len(CHECKS) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
