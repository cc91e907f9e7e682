"""Lifecycle simulation: how often the cycle's rules act on noise, and how fast they catch a real change.

Consecutive cycles 12 h apart on the market simulator, in process (no database, store or queue). Each
cycle fits every model definition on the newest window (the same `train_on` template the cycle's build
jobs run, with its 4 walk-forward folds, small fast configurations), then two rule sets
decide on the very same fits, in the same run:

- new rules (DESIGN 6, the code the cycle runs): `app.ml.champions.plan_champions` (the incumbent's
  fresh fit serves unless significantly worse; a challenger switches in only when better at 5%, Holm),
  `app.ml.lifecycle.drift_verdict` (drop > 0.05 and significant) and `tuning_verdict`;
- old rules (before issue 8): the champion is the highest holdout score among this cycle's fits and the
  serving model (classifiers scored by accuracy skill); the serving model, when it stays champion, is
  flagged when its accuracy (regressors: skill) on the newest unseen hours is more than 0.05 below
  validation; a flagged model is replaced by its definition's refit when that has a better F1 (RMSE).

Scenarios (each trial a fresh simulated market, seeded):
- stationary: default simulator parameters, all five kinds with two definitions each;
- vanish: a planted AR(1) signal in 1-minute returns (ar1 = -0.4) that disappears at a break between
  two cycles; a direction definition that reads it (momentum is left out here: most of its skill comes
  from the size of the last move, which a random walk has too, so it has little to lose at the break);
- challenger: the signal throughout; the incumbent definition cannot see it (volatility features only),
  a challenger that can (returns) joins at a cycle.

Figures: false drift flags per drift evaluation (stationary), champion-definition changes per kind-cycle
(stationary), breaks detected (flagged or switched) within 2 cycles per trial, and the oldest champion
(age at the end of its 12-hour serving interval) against MODEL_EXPIRY_HOURS (72).

    .venv/bin/python bench/lifecycle.py            # the full table (>= 40 model-cycles per figure)
    .venv/bin/python bench/lifecycle.py --quick    # a smaller run, a minute or two
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from app.data.frames import DAY_MS, HOUR_MS, candles_frame  # noqa: E402
from app.data.simulator import MarketSimulator, SimulatorParams  # noqa: E402
from app.ml import lifecycle  # noqa: E402
from app.ml.champions import Contender, plan_champions  # noqa: E402
from app.ml.dataset import build_dataset  # noqa: E402
from app.ml.evaluation import estimate_from_performance  # noqa: E402
from app.ml.training import model_from_definition  # noqa: E402
from app.ml.validation import evaluate_dataset, unseen  # noqa: E402

START_MS = 1_700_000_000_000 // DAY_MS * DAY_MS
SYMBOLS = ["BTC-USDT", "ETH-USDT"]
CYCLE_HOURS = 12.0
EXPIRY_HOURS = 72.0
OLD_THRESHOLD = 0.05
SIGNAL = SimulatorParams(ar1=-0.4)
NO_SIGNAL = SimulatorParams()
WARMUP_BARS = 1_000  # history before the first window, for indicator warm-up
FOLDS = 4  # walk-forward folds: the lifecycle tests use their spread

FEATURES_A = ["returns", "returns_5", "rsi_14", "natr_14"]
FEATURES_B = ["returns_5", "returns_15", "close_zscore_20", "adx_14", "realized_vol_30"]
BLIND = ["natr_14", "bb_width_20", "volume_ratio_20"]


def _def(name: str, kind: str, config: dict, features: list[str], horizon: int) -> dict[str, Any]:
    return {"kind": kind, "name": name, "config": config, "features": features, "horizon": horizon,
            "timeframe": "1m"}


STATIONARY = [
    _def("dir_a", "direction", {"n_estimators": 30, "max_depth": 3}, FEATURES_A, 1),
    _def("dir_b", "direction", {"n_estimators": 30, "max_depth": 3}, FEATURES_B, 5),
    _def("risk_a", "risk", {"n_estimators": 15, "max_depth": 6}, FEATURES_A, 15),
    _def("risk_b", "risk", {"n_estimators": 15, "max_depth": 6}, FEATURES_B, 15),
    _def("price_a", "price", {"hidden_layers": [16], "epochs": 3}, FEATURES_A, 60),
    _def("price_b", "price", {"hidden_layers": [16], "epochs": 3}, FEATURES_B, 60),
    _def("mom_a", "momentum", {"n_components": 60}, FEATURES_A, 5),
    _def("mom_b", "momentum", {"n_components": 60}, FEATURES_B, 5),
    _def("vol_a", "volatility", {"max_iter": 40}, FEATURES_A + ["realized_vol_60"], 60),
    _def("vol_b", "volatility", {"max_iter": 40}, FEATURES_B, 60),
]
SIGNAL_READERS = [_def("dir_a", "direction", {"n_estimators": 30, "max_depth": 3}, FEATURES_A, 1)]
CHALLENGERS = [
    _def("dir_a", "direction", {"n_estimators": 30, "max_depth": 3}, FEATURES_A, 1),
    _def("mom_a", "momentum", {"n_components": 60}, FEATURES_A, 1),
]
INCUMBENT_BLIND = [
    _def("dir_blind", "direction", {"n_estimators": 30, "max_depth": 3}, BLIND, 1),
    _def("mom_blind", "momentum", {"n_components": 60}, BLIND, 1),
]


@dataclass
class Fit:
    """One definition fitted by one cycle."""

    name: str
    family: str
    kind: str
    model: Any
    window_end_ms: int
    performance: dict[str, Any]

    def old_score(self) -> float:
        key = "accuracy_skill" if self.model.is_classifier else "skill"
        value = self.performance.get(key)
        return float(value) if value is not None else -np.inf


@dataclass
class KindCycle:
    """What one rule set did for one kind in one cycle."""

    rules: str
    kind: str
    cycle: int
    champion: str
    family: str
    switched: bool
    evaluated: bool
    flagged: bool
    needs_tuning: bool
    age_hours: float


@dataclass
class Trial:
    records: list[KindCycle] = field(default_factory=list)
    cycle_ms: list[int] = field(default_factory=list)


def market(seed: int, bars: int, params: SimulatorParams, break_at: int | None = None,
           after: SimulatorParams | None = None) -> dict[str, pd.DataFrame]:
    """Simulated 1m candles from START_MS; with `break_at` (bars), the parameters change there."""
    first = MarketSimulator(seed, params).generate(SYMBOLS, START_MS, bars if break_at is None else break_at)
    if break_at is not None:
        rest = MarketSimulator(seed + 1000, after).extend(first, START_MS + (bars - 1) * 60_000,
                                                           history_params=params)
        first = {s: pd.concat([first[s], rest[s]], ignore_index=True) for s in SYMBOLS}
    return {s: candles_frame(f) for s, f in first.items()}


def _slice(candles: dict[str, pd.DataFrame], start_ms: int, end_ms: int) -> dict[str, pd.DataFrame]:
    lo, hi = pd.Timestamp(start_ms, unit="ms", tz="UTC"), pd.Timestamp(end_ms, unit="ms", tz="UTC")
    return {s: c.loc[lo:hi] for s, c in candles.items()}


def fit_all(definitions: Sequence[dict], candles: dict[str, pd.DataFrame], cycle: int, end_ms: int,
            window_days: float) -> list[Fit]:
    window = _slice(candles, end_ms - int(window_days * DAY_MS) - WARMUP_BARS * 60_000, end_ms)
    fits = []
    for d in definitions:
        model = model_from_definition({k: v for k, v in d.items() if k != "name"})
        model.train_on(window, data_source="simulated", walk_forward_folds=FOLDS)
        model.name_ = f"{d['name']}_{cycle:03d}"
        fits.append(Fit(model.name_, d["name"], model.kind, model, end_ms, dict(model.performance_)))
    return fits


def _live(fit: Fit, candles: dict[str, pd.DataFrame], end_ms: int) -> dict[str, Any] | None:
    """The serving model's metrics on the newest hours after its window (rows it never saw)."""
    start = max(fit.window_end_ms + 60_000, end_ms - 24 * HOUR_MS)
    frame = _slice(candles, start - WARMUP_BARS * 60_000, end_ms)
    ds = build_dataset(fit.model, frame)
    mask = (ds.ts_ms >= start) & unseen(fit.model, ds)
    if mask.sum() < 30:
        return None
    return evaluate_dataset(fit.model, ds.subset(mask), reps=499)


def _age(fit: Fit, now_ms: int) -> float:
    return (now_ms - fit.window_end_ms) / HOUR_MS + CYCLE_HOURS


def new_rules(kind: str, serving: Fit | None, fresh: list[Fit], candles: dict[str, pd.DataFrame],
              now_ms: int, cycle: int) -> tuple[Fit, KindCycle]:
    flagged = tuned = evaluated = False
    if serving is not None:
        live = _live(serving, candles, now_ms)
        if live is not None:
            evaluated = True
            verdict = lifecycle.drift_verdict(serving.performance, estimate_from_performance(live))
            flagged = verdict.flagged
            sibling = next((f for f in fresh if f.family == serving.family), None)
            if flagged and sibling is not None:
                again = _live(Fit(sibling.name, sibling.family, kind, sibling.model, serving.window_end_ms,
                                  sibling.performance), candles, now_ms)
                if again is not None:
                    tuned = lifecycle.tuning_verdict(serving.performance,
                                                     estimate_from_performance(again)).flagged
    pool = {f.name: f for f in fresh}
    if serving is not None:
        pool[serving.name] = serving
    contenders = [Contender(f.name, f.family, kind, f.model, f.name in {x.name for x in fresh},
                            100 * (f.performance.get("skill") or 0.0), _age(f, now_ms) - CYCLE_HOURS)
                  for f in pool.values()]
    start = min(int(f.model.training_["train_end_ms"]) for f in fresh) if fresh else now_ms
    frame = {"1m": _slice(candles, start - WARMUP_BARS * 60_000, now_ms)}
    plans = plan_champions(contenders, {kind: serving.name} if serving else {}, frame,
                           expiry_hours=EXPIRY_HOURS, cycle_hours=CYCLE_HOURS)
    chosen = pool[plans[kind].decision.champion]
    switched = serving is not None and chosen.family != serving.family
    return chosen, KindCycle("new", kind, cycle, chosen.name, chosen.family, switched, evaluated, flagged,
                             tuned, _age(chosen, now_ms))


def old_rules(kind: str, serving: Fit | None, fresh: list[Fit], candles: dict[str, pd.DataFrame],
              now_ms: int, cycle: int) -> tuple[Fit, KindCycle]:
    pool = list(fresh) + ([serving] if serving is not None else [])
    chosen = max(pool, key=lambda f: (f.old_score(), f.window_end_ms))
    flagged = evaluated = False
    if serving is not None and chosen is serving:  # the old drift stage saw only models it did not train
        live = _live(serving, candles, now_ms)
        if live is not None:
            evaluated = True
            name = "accuracy" if serving.model.is_classifier else "skill"
            before, after = serving.performance.get(name), live.get(name)
            flagged = before is not None and after is not None and before - after > OLD_THRESHOLD
            sibling = next((f for f in fresh if f.family == serving.family), None)
            if flagged and sibling is not None:
                metric = "f1" if serving.model.is_classifier else "rmse"
                again = _live(Fit(sibling.name, sibling.family, kind, sibling.model, serving.window_end_ms,
                                  sibling.performance), candles, now_ms)
                if again is not None:
                    sign = 1 if metric == "f1" else -1
                    better = sign * (again[metric] - live[metric]) > 0
                    chosen = sibling if better else serving
    switched = serving is not None and chosen.family != serving.family
    return chosen, KindCycle("old", kind, cycle, chosen.name, chosen.family, switched, evaluated, flagged,
                             False, _age(chosen, now_ms))


def run_trial(candles: dict[str, pd.DataFrame], definitions_at: Callable[[int], Sequence[dict]],
              first_cycle_ms: int, cycles: int, window_days: float) -> Trial:
    trial = Trial()
    serving: dict[str, dict[str, Fit | None]] = {"new": {}, "old": {}}
    for c in range(cycles):
        now = first_cycle_ms + int(c * CYCLE_HOURS * HOUR_MS)
        trial.cycle_ms.append(now)
        fits = fit_all(definitions_at(c), candles, c, now, window_days)
        for kind in sorted({f.kind for f in fits}):
            fresh = [f for f in fits if f.kind == kind]
            for rules, decide in (("new", new_rules), ("old", old_rules)):
                chosen, record = decide(kind, serving[rules].get(kind), fresh, candles, now, c)
                serving[rules][kind] = chosen
                trial.records.append(record)
    return trial


@dataclass(frozen=True)
class Config:
    window_days: float = 7.0  # the cycle's default window (train 0.8 / holdout 0.2)
    stationary_trials: int = 2
    stationary_cycles: int = 12
    vanish_trials: int = 20
    challenger_trials: int = 10
    first_seed: int = 1


QUICK = Config(window_days=3.0, stationary_trials=1, stationary_cycles=8, vanish_trials=6,
               challenger_trials=4)


def _bars_until(cycle_ms: int) -> int:
    return (cycle_ms - START_MS) // 60_000 + 1


def stationary(cfg: Config, kinds: Sequence[dict] = STATIONARY) -> list[Trial]:
    trials = []
    first = START_MS + int(cfg.window_days * DAY_MS) + WARMUP_BARS * 60_000
    last = first + int((cfg.stationary_cycles - 1) * CYCLE_HOURS * HOUR_MS)
    for i in range(cfg.stationary_trials):
        candles = market(cfg.first_seed + i, _bars_until(last), NO_SIGNAL)
        trials.append(run_trial(candles, lambda c: kinds, first, cfg.stationary_cycles, cfg.window_days))
    return trials


def vanish(cfg: Config, cycles_before: int = 2, cycles_after: int = 2,
           readers: Sequence[dict] = SIGNAL_READERS) -> list[Trial]:
    """The signal is there for `cycles_before` cycles, then gone 6 h before the next cycle."""
    trials = []
    first = START_MS + int(cfg.window_days * DAY_MS) + WARMUP_BARS * 60_000
    cycles = cycles_before + cycles_after
    last = first + int((cycles - 1) * CYCLE_HOURS * HOUR_MS)
    break_ms = first + int((cycles_before - 1) * CYCLE_HOURS * HOUR_MS) + 6 * HOUR_MS
    for i in range(cfg.vanish_trials):
        seed = 100 + cfg.first_seed + i
        candles = market(seed, _bars_until(last), SIGNAL, _bars_until(break_ms), NO_SIGNAL)
        trials.append(run_trial(candles, lambda c: readers, first, cycles, cfg.window_days))
    return trials


def challenger(cfg: Config, joins_at: int = 1, cycles: int = 3, incumbents: Sequence[dict] = INCUMBENT_BLIND,
               challengers: Sequence[dict] = CHALLENGERS) -> list[Trial]:
    """The signal throughout; the blind incumbent alone at first, the challengers join at `joins_at`."""
    trials = []
    first = START_MS + int(cfg.window_days * DAY_MS) + WARMUP_BARS * 60_000
    last = first + int((cycles - 1) * CYCLE_HOURS * HOUR_MS)
    for i in range(cfg.challenger_trials):
        candles = market(200 + cfg.first_seed + i, _bars_until(last), SIGNAL)
        trials.append(run_trial(candles, lambda c: [*incumbents, *(challengers if c >= joins_at else [])],
                                first, cycles, cfg.window_days))
    return trials


def summarise(stationary_trials: list[Trial], vanish_trials: list[Trial], challenger_trials: list[Trial],
              cycles_before: int = 2, joins_at: int = 1) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for rules in ("new", "old"):
        rows = [r for t in stationary_trials for r in t.records if r.rules == rules]
        evaluated = [r for r in rows if r.evaluated]
        later = [r for r in rows if r.cycle > 0]
        detected = []
        for t in vanish_trials:
            for kind in sorted({r.kind for r in t.records}):
                after = [r for r in t.records
                         if r.rules == rules and r.kind == kind and r.cycle >= cycles_before]
                detected.append(any(r.flagged or r.switched for r in after[:2]))
        switched_in = []
        for t in challenger_trials:
            for kind in sorted({r.kind for r in t.records}):
                after = [r for r in t.records if r.rules == rules and r.kind == kind and r.cycle >= joins_at]
                switched_in.append(any(r.family in {d["name"] for d in CHALLENGERS} for r in after[:2]))
        everything = [r for t in stationary_trials + vanish_trials + challenger_trials for r in t.records
                      if r.rules == rules]
        tuned = [r for t in vanish_trials for r in t.records if r.rules == rules and r.flagged]
        out[rules] = {
            "false_flags": sum(r.flagged for r in evaluated), "drift_evaluations": len(evaluated),
            "champion_changes": sum(r.switched for r in later), "kind_cycles": len(later),
            "vanish_detected": sum(detected), "vanish_trials": len(detected),
            "challenger_detected": sum(switched_in), "challenger_trials": len(switched_in),
            "max_champion_age_h": round(max(r.age_hours for r in everything), 1) if everything else None,
            "needs_tuning_after_vanish": sum(r.needs_tuning for r in tuned),
            "flags_after_vanish": len(tuned),
        }
    return out


def _pct(a: int, b: int) -> str:
    return f"{a}/{b} = {100 * a / b:.1f}%" if b else "-"


def table(summary: dict[str, dict[str, Any]]) -> str:
    new, old = summary["new"], summary["old"]
    rows = [
        ("false drift flags, stationary (target <= 5%)", _pct(new["false_flags"], new["drift_evaluations"]),
         _pct(old["false_flags"], old["drift_evaluations"])),
        ("champion-definition changes, stationary (target <= 5%)",
         _pct(new["champion_changes"], new["kind_cycles"]),
         _pct(old["champion_changes"], old["kind_cycles"])),
        ("vanished signal detected within 2 cycles (target >= 80%)",
         _pct(new["vanish_detected"], new["vanish_trials"]),
         _pct(old["vanish_detected"], old["vanish_trials"])),
        ("better challenger switched in within 2 cycles (target >= 80%)",
         _pct(new["challenger_detected"], new["challenger_trials"]),
         _pct(old["challenger_detected"], old["challenger_trials"])),
        (f"oldest champion, h (limit {EXPIRY_HOURS:g})", str(new["max_champion_age_h"]),
         str(old["max_champion_age_h"])),
        ("flagged after the break and still below after refit (needs tuning)",
         _pct(new["needs_tuning_after_vanish"], new["flags_after_vanish"]), "-"),
    ]
    width = max(len(r[0]) for r in rows)
    lines = [f"| {'figure'.ljust(width)} | new rules | old rules |", f"|{'-' * (width + 2)}|---|---|"]
    lines += [f"| {a.ljust(width)} | {b} | {c} |" for a, b, c in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smaller run (figures less precise)")
    parser.add_argument("--json", type=Path, help="also write the summary and every record here")
    args = parser.parse_args()
    cfg = QUICK if args.quick else Config()
    started = time.perf_counter()
    parts = {}
    for name, run in (("stationary", stationary), ("vanish", vanish), ("challenger", challenger)):
        t0 = time.perf_counter()
        parts[name] = run(cfg)
        print(f"{name}: {len(parts[name])} trials in {time.perf_counter() - t0:.0f} s", flush=True)
    summary = summarise(parts["stationary"], parts["vanish"], parts["challenger"])
    print(table(summary))
    print(f"total {time.perf_counter() - started:.0f} s; window {cfg.window_days:g} d, cycles "
          f"{CYCLE_HOURS:g} h apart, symbols {', '.join(SYMBOLS)}")
    if args.json:
        records = {k: [[r.__dict__ for r in t.records] for t in v] for k, v in parts.items()}
        args.json.write_text(json.dumps({"config": cfg.__dict__, "summary": summary, "records": records},
                                        indent=1, default=str))


if __name__ == "__main__":
    main()
