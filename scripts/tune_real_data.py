"""Issue 12's figure on real candles: a kind's definition of config/models.yaml tuned on a 7-day window,
beside the default, on the study's holdout and on a replay window after all the tuning data.

Usage: nice -n 10 .venv/bin/python scripts/tune_real_data.py FOLDER [--kinds direction] [--trials 10]
                                                            [--days 7] [--replay-days 2] [--json OUT]

FOLDER holds `<BASE>-<QUOTE>_1m.csv`. Nothing is stored: candles are read into memory, and each study runs
in one process with Optuna's in-memory storage (the service's search space from config/models.yaml, its
objective on the train part only, its sampler, pruner and holdout verdict: bench/tune_decisions.py).
The window ends `--replay-days` before the newest candle; the replay refits both definitions on the whole
window and scores them on those later days, with the same paired test. Not read by tests or defaults.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import optuna  # noqa: E402

from app.data.frames import DAY_MS, index_ms, iso  # noqa: E402
from app.ml.tuning import holdout_verdict  # noqa: E402
from app.services.cycle.definitions import load_definitions, search_spaces  # noqa: E402
from bench.tune_decisions import cut_of, run_study  # noqa: E402
from scripts.evidence_real_data import _slice, load  # noqa: E402


def one_kind(candles: dict, kind: str, args: argparse.Namespace) -> dict:
    from app.ml.registry import model_class_for

    current = next(d for d in load_definitions() if model_class_for(d["type"]).kind == kind)
    current = {k: v for k, v in current.items() if k != "walk_forward_folds"}
    newest = min(int(index_ms(c.index).max()) for c in candles.values())
    window_end = newest - int(args.replay_days * DAY_MS)
    window = _slice(candles, window_end, args.days)
    window_start = window_end - int(args.days * DAY_MS)
    cut = cut_of({s: c[index_ms(c.index) >= window_start] for s, c in window.items()})
    train = {s: c[index_ms(c.index) < cut] for s, c in window.items()}
    began = time.perf_counter()
    study, cur, best = run_study(train, current, search_spaces().get(current["type"]), args.trials, 4, 7)
    tried = len(study.trials)
    holdout = holdout_verdict(current, best.user_attrs["definition"], train_candles=train,
                              window_candles=window, cut_ms=cut,
                              folds_current={"folds": cur.user_attrs.get("folds") or []},
                              folds_best={"folds": best.user_attrs["folds"]}, trials=tried)
    everything = _slice(candles, newest, args.days + args.replay_days)
    replay = holdout_verdict(current, best.user_attrs["definition"], train_candles=window,
                             window_candles=everything, cut_ms=window_end + 60_000,
                             folds_current={"folds": cur.user_attrs.get("folds") or []},
                             folds_best={"folds": best.user_attrs["folds"]}, trials=tried)
    return {
        "kind": kind, "definition": current["name"], "trials": tried,
        "seconds": round(time.perf_counter() - began),
        "states": {s.name: sum(t.state == s for t in study.trials) for s in optuna.trial.TrialState},
        "window": [iso(window_start), iso(window_end)], "holdout_from": iso(cut),
        "best": {"params": best.params, "features": best.user_attrs["definition"]["features"],
                 "folds_value": best.value}, "current_folds_value": cur.value,
        "holdout": _figures(holdout), "replay": _figures(replay),
    }


def _figures(v) -> dict:  # noqa: ANN001 - a HoldoutVerdict
    test = v.test
    return {"adopt": v.adopt, "current_skill": v.current_skill, "best_skill": v.best_skill,
            "current_interval": v.current_interval, "best_interval": v.best_interval,
            "gain": test["mean_difference"], "gain_interval": test["interval"], "p_value": test["p_value"],
            "rows": test["n"], "n_effective": test["n_effective"]}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("folder", type=Path)
    parser.add_argument("--symbols", default="BTC-USDT,ETH-USDT,XRP-USDT")
    parser.add_argument("--kinds", default="direction")
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--days", type=float, default=7.0)
    parser.add_argument("--replay-days", type=float, default=2.0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    candles = load(args.folder, args.symbols.split(","))
    rows = [one_kind(candles, kind, args) for kind in args.kinds.split(",")]
    for r in rows:
        for part in ("holdout", "replay"):
            f = r[part]
            print(f"{r['kind']:<11}{part:<8} current {f['current_skill']:+.4f} best {f['best_skill']:+.4f} "
                  f"gain {f['gain']:+.4f} 95% {f['gain_interval']} p = {f['p_value']:.3f} "
                  f"({f['rows']} rows) adopt={f['adopt']}")
        print(f"  {r['trials']} trials {r['states']} in {r['seconds']} s; best {r['best']}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
