"""How often a tuning study adopts when it should not (and, beside it, when it should), by simulation.

    nice -n 10 .venv/bin/python bench/tune_decisions.py                 # 40 null + 20 planted studies
    nice -n 10 .venv/bin/python bench/tune_decisions.py --null 100 --planted 0 --trials 8

Each study runs the code a real study runs, in one process with Optuna's in-memory storage instead of
the database and the workers: the search space (`app.ml.search_space`), the objective on the train part
only (`app.ml.tuning.trial_value`, walk-forward folds, the median pruner over them, the TPE sampler the
service uses), and the holdout verdict (`holdout_verdict`: refit of the best and the current definition,
the paired test with the between-fit variance, adopted only when better at 5%). A null study tunes a
direction definition on a simulated random walk (`ar1 = 0`: no definition has any skill), each with its
own market seed; a planted study on `ar1 = 0.3` starting from a definition without the return features.
Prints the adoption rates with a Wilson 95% interval and writes `bench/results/tune_decisions-<time>.json`.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path

import optuna
import pandas as pd

from app.data.frames import index_ms
from app.data.simulator import MarketSimulator, SimulatorParams
from app.ml import search_space
from app.ml.tuning import holdout_verdict, trial_value
from app.services.tuning import storage

ROOT = Path(__file__).resolve().parents[1]
START_MS = 1_700_000_000_000 // 60_000 * 60_000
SYMBOLS = ["BTC-USDT", "ETH-USDT"]
SPACE = {"params": {"n_estimators": {"low": 10, "high": 60, "step": 10}, "max_depth": {"low": 2, "high": 5}},
         "features": ["returns", "returns_5", "rsi_14", "volume_ratio_20", "bb_width_20", "natr_14"],
         "min_features": 1}
CURRENT = {"type": "xgboost", "name": "direction_bench", "config": {"n_estimators": 20, "max_depth": 3},
           "features": ["volume_ratio_20", "bb_width_20"], "horizon": 1, "timeframe": "1m"}


def _candles(seed: int, ar1: float, days: float) -> dict[str, pd.DataFrame]:
    frames = MarketSimulator(seed, SimulatorParams(ar1=ar1)).generate(SYMBOLS, START_MS, int(days * 1440))
    out = {}
    for symbol, frame in frames.items():
        frame = frame.copy()
        frame.index = pd.to_datetime(frame.pop("ts"), unit="ms", utc=True)
        frame.index.name = "ts"
        out[symbol] = frame
    return out


def run_study(train: dict[str, pd.DataFrame], current: dict, space_spec: dict | None, trials: int, folds: int,
              seed: int) -> tuple[optuna.Study, optuna.trial.FrozenTrial, optuna.trial.FrozenTrial]:
    """An in-memory study of `current` on `train` (the service's space, objective, sampler and pruner);
    returns (study, the current definition's trial, the best trial)."""
    space = search_space.with_current(search_space.parse_space(str(current["type"]), space_spec), current)
    study = optuna.create_study(direction="maximize", sampler=storage.sampler(seed), pruner=storage.pruner())
    study.enqueue_trial(search_space.as_trial_params(space, current), user_attrs={"current": True})

    def objective(trial: optuna.Trial) -> float:
        definition = search_space.sample(space, trial, current)

        def report(fold: int, mean: float) -> None:
            trial.report(mean, fold)
            if trial.should_prune():
                raise optuna.TrialPruned()

        result = trial_value(definition, train, folds, report)
        trial.set_user_attr("definition", definition)
        trial.set_user_attr("folds", [{"loss_ratio": f.get("loss_ratio")} for f in result["folds"]])
        return float(result["mean_skill"])

    study.optimize(objective, n_trials=trials, catch=(ValueError,))
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    best = max(complete, key=lambda t: (t.value, -t.number))
    return study, next(t for t in study.trials if t.user_attrs.get("current")), best


def cut_of(candles: dict[str, pd.DataFrame], ratio: float = 0.8) -> int:
    first = min(int(index_ms(c.index).min()) for c in candles.values())
    last = max(int(index_ms(c.index).max()) for c in candles.values())
    return first + math.ceil(ratio * (last - first) / 60_000) * 60_000


def one_study(seed: int, ar1: float, trials: int, days: float, folds: int) -> dict:
    candles = _candles(seed, ar1, days)
    cut = cut_of(candles)
    train = {s: c[index_ms(c.index) < cut] for s, c in candles.items()}
    study, current, best = run_study(train, CURRENT, SPACE, trials, folds, seed)
    verdict = holdout_verdict(CURRENT, best.user_attrs["definition"], train_candles=train,
                              window_candles=candles, cut_ms=cut,
                              folds_current={"folds": current.user_attrs.get("folds") or []},
                              folds_best={"folds": best.user_attrs["folds"]}, trials=len(study.trials))
    return {"seed": seed, "ar1": ar1, "adopted": verdict.adopt, "p_value": verdict.test["p_value"],
            "best_is_current": best.number == current.number, "best_value": best.value,
            "current_value": current.value, "holdout_current": verdict.current_skill,
            "holdout_best": verdict.best_skill}


def wilson(k: int, n: int) -> list[float]:
    if n == 0:
        return [0.0, 1.0]
    p, z = k / n, 1.96
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return [round(max(0.0, centre - half), 4), round(min(1.0, centre + half), 4)]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--null", type=int, default=40)
    parser.add_argument("--planted", type=int, default=20)
    parser.add_argument("--trials", type=int, default=6)
    parser.add_argument("--days", type=float, default=2.0)
    parser.add_argument("--folds", type=int, default=4)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    started, began = time.strftime("%Y%m%d-%H%M%S"), time.perf_counter()
    runs = {"null": [one_study(1000 + i, 0.0, args.trials, args.days, args.folds) for i in range(args.null)],
            "planted": [one_study(2000 + i, 0.3, args.trials, args.days, args.folds)
                        for i in range(args.planted)]}
    figures = {"args": vars(args), "seconds": round(time.perf_counter() - began, 1),
               "load": os.getloadavg(), "runs": runs}
    for name, rows in runs.items():
        k = sum(r["adopted"] for r in rows)
        rate = round(k / len(rows), 4) if rows else None
        figures[name] = {"studies": len(rows), "adopted": k, "rate": rate, "interval": wilson(k, len(rows))}
        print(f"{name:>8}: {k}/{len(rows)} adopted, rate {figures[name]['rate']} "
              f"(95% {figures[name]['interval']})")
    out = ROOT / "bench" / "results" / f"tune_decisions-{started}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(figures, indent=2, default=str))
    print(f"{figures['seconds']} s; written to {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
