"""Issue 8's figures on real candles: each definition's skill with its interval, and the lifecycle over
consecutive cycles 12 hours apart across the whole history, new rules beside old ones.

Usage: .venv/bin/python scripts/evidence_real_data.py FOLDER [--symbols BTC-USDT,ETH-USDT,XRP-USDT]
                                                        [--every-hours 12] [--max-cycles N] [--json OUT]

FOLDER holds `<BASE>-<QUOTE>_1m.csv` candle files. Nothing is stored: candles are read into memory.

1. skills: every definition of config/models.yaml (the defaults a user runs), trained with the cycle's
   template (7-day window, train 0.8 / holdout 0.2, 4 walk-forward folds) on the newest window and on
   windows ending 14 and 28 days earlier: skill over the strongest baseline, its 95% interval, whether
   it beats the baseline, accuracy skill for classifiers, the walk-forward mean.
2. lifecycle: bench/lifecycle.py's rules (the cycle's own decision code) on consecutive windows 12 h
   apart, with its small fast definitions (two per kind): champion switches, drift flags, definitions
   left needing tuning, the oldest champion, and how often each kind's champion beat its baseline.

Not read by tests or defaults (a user's clone has no real data). Prints plain tables to paste.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.data.frames import DAY_MS, HOUR_MS, candles_frame, index_ms, iso  # noqa: E402
from app.data.sources.csv_source import read_candles_csv  # noqa: E402
from app.ml import TrainingPipeline  # noqa: E402
from app.services.cycle.definitions import load_definitions  # noqa: E402
from bench import lifecycle as sim  # noqa: E402


def load(folder: Path, symbols: list[str]) -> dict[str, pd.DataFrame]:
    out = {}
    for symbol in symbols:
        raw = read_candles_csv(folder / f"{symbol}_1m.csv").dropna()
        raw = raw[(raw["ts"] % 60_000 == 0)].drop_duplicates("ts").sort_values("ts")
        out[symbol] = candles_frame(raw)
    return out


def _slice(candles: dict[str, pd.DataFrame], end_ms: int, days: float, warmup_bars: int = 1500) -> dict:
    start = end_ms - int(days * DAY_MS) - warmup_bars * 60_000
    lo, hi = pd.Timestamp(start, unit="ms", tz="UTC"), pd.Timestamp(end_ms, unit="ms", tz="UTC")
    return {s: c.loc[lo:hi] for s, c in candles.items()}


def _fmt(x: Any, digits: int = 3) -> str:
    return "-" if x is None else f"{x:+.{digits}f}" if isinstance(x, float) else str(x)


def skills(candles: dict[str, pd.DataFrame], newest_ms: int) -> list[dict[str, Any]]:
    rows = []
    for back_days in (0, 14, 28):
        end = newest_ms - back_days * DAY_MS
        window = _slice(candles, end, 7)
        for d in load_definitions({}):
            started = time.perf_counter()
            model = TrainingPipeline().train_model({**d, "data_source": "csv"}, window)
            p = model.performance_
            lo, hi = p["skill_interval"] or (None, None)
            rows.append({
                "window_end": iso(end)[:16], "definition": d["name"], "kind": model.kind,
                "baseline": p["baseline"], "skill": p["skill"], "lo": lo, "hi": hi,
                "beats": "yes" if p["beats_baseline"] else "no", "n_eff": p["n_effective"],
                "accuracy_skill": p.get("accuracy_skill"), "roc_auc": p.get("roc_auc"),
                "walk_forward_mean": p["walk_forward"]["mean_skill"],
                "seconds": round(time.perf_counter() - started, 1),
            })
            r = rows[-1]
            print(f"{r['window_end']}  {r['definition']:<26} {r['kind']:<10} skill {_fmt(r['skill'])} "
                  f"[{_fmt(r['lo'])}, {_fmt(r['hi'])}] beats {r['beats']:<3} vs {r['baseline']:<11} "
                  f"acc.skill {_fmt(r['accuracy_skill'])} auc {_fmt(r['roc_auc'])} "
                  f"folds {_fmt(r['walk_forward_mean'])} n_eff {r['n_eff']}", flush=True)
    return rows


def lifecycle(candles: dict[str, pd.DataFrame], every_hours: float, max_cycles: int | None) -> dict[str, Any]:
    first_ms = max(int(index_ms(c.index)[0]) for c in candles.values())
    newest = min(int(index_ms(c.index)[-1]) for c in candles.values())
    start = first_ms + 7 * DAY_MS + 1500 * 60_000
    cycles = int((newest - start) // (every_hours * HOUR_MS)) + 1
    if max_cycles:
        cycles = min(cycles, max_cycles)
    sim.CYCLE_HOURS = every_hours
    trial = sim.run_trial(candles, lambda c: sim.STATIONARY, start, cycles, 7.0)
    out: dict[str, Any] = {"cycles": cycles, "first": iso(start), "last": iso(trial.cycle_ms[-1])}
    for rules in ("new", "old"):
        records = [r for r in trial.records if r.rules == rules]
        later = [r for r in records if r.cycle > 0]
        evaluated = [r for r in records if r.evaluated]
        per_kind = {}
        for kind in sorted({r.kind for r in records}):
            mine = [r for r in later if r.kind == kind]
            per_kind[kind] = {"switches": sum(r.switched for r in mine),
                              "flags": sum(r.flagged for r in mine if r.evaluated),
                              "evaluations": sum(r.evaluated for r in mine),
                              "needs_tuning": sum(r.needs_tuning for r in mine)}
        out[rules] = {
            "switches": sum(r.switched for r in later), "kind_cycles": len(later),
            "flags": sum(r.flagged for r in evaluated), "evaluations": len(evaluated),
            "needs_tuning": sum(r.needs_tuning for r in records),
            "max_champion_age_h": max(r.age_hours for r in records), "per_kind": per_kind,
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--symbols", default="BTC-USDT,ETH-USDT,XRP-USDT")
    parser.add_argument("--every-hours", type=float, default=12.0)
    parser.add_argument("--max-cycles", type=int)
    parser.add_argument("--skip-skills", action="store_true")
    parser.add_argument("--skip-lifecycle", action="store_true")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    candles = load(args.folder, [s.strip() for s in args.symbols.split(",") if s.strip()])
    newest = min(int(index_ms(c.index)[-1]) for c in candles.values())
    report: dict[str, Any] = {"symbols": sorted(candles)}
    if not args.skip_skills:
        print("## skill over the strongest baseline, 95% block-bootstrap interval (config/models.yaml)")
        report["skills"] = skills(candles, newest)
        beats = [r for r in report["skills"] if r["beats"] == "yes"]
        print(f"{len(beats)} of {len(report['skills'])} fits beat their baseline")
    if not args.skip_lifecycle:
        print(f"## lifecycle, cycles {args.every_hours:g} h apart (bench/lifecycle.py definitions)")
        report["lifecycle"] = life = lifecycle(candles, args.every_hours, args.max_cycles)
        print(f"{life['cycles']} cycles, {life['first'][:16]} .. {life['last'][:16]}")
        for rules in ("new", "old"):
            r = life[rules]
            print(f"{rules} rules: champion switches {r['switches']}/{r['kind_cycles']}, drift flags "
                  f"{r['flags']}/{r['evaluations']}, needs tuning {r['needs_tuning']}, oldest champion "
                  f"{r['max_champion_age_h']:.0f} h; per kind {r['per_kind']}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1, default=str))


if __name__ == "__main__":
    main()
