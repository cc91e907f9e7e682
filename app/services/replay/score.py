"""Scoring what a replay served: each step's models on the period after it, once its horizons passed.

After step i (time T_i) the API would serve step i's champions until T_i + every. Their answers in that
period are scored on the candles that followed (labels only from later bars; the rows start at the newest
candle known at T_i, and any row the model trained on is left out). Three policies per kind:

- `served`: the champion each step chose (what the API would have served);
- `freeze_first`: the first champion the replay had, served for ever;
- `newest`: each step's own fit with the best validation score (the point-estimate rule, no test).

Pooled over the steps, each policy gets its skill against each baseline with a block-bootstrap interval
(`against`), and as its headline the skill over the baseline that was strongest over the whole replay,
with that skill per symbol too (app.ml.served, app.ml.evaluation). Direction gets the trading result
after fees and slippage beside buy and hold (app.ml.trading), risk the Spearman rank correlation between
its score and the realized excursion, and volatility the QLIKE of the model and of each baseline.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from app.ml import losses
from app.ml.evaluation import Scored, SkillEstimate, skill_estimate
from app.ml.evaluation import score as score_model
from app.ml.served import against_each, cumulative_skill, strongest
from app.services.replay.ahead import Periods

POLICIES = ("served", "freeze_first", "newest")


def policy_models(steps: list[dict[str, Any]]) -> dict[str, dict[str, list[str | None]]]:
    """kind -> policy -> the model serving after each step (None before the kind has one)."""
    kinds = sorted({k for s in steps for k in (*s["champions"], *s["fits"])})
    out: dict[str, dict[str, list[str | None]]] = {}
    for kind in kinds:
        served = [s["champions"].get(kind) for s in steps]
        first = next((m for m in served if m), None)
        frozen = [first if any(served[: i + 1]) else None for i in range(len(steps))]
        newest: list[str | None] = []
        for step in steps:
            fits = step["fits"].get(kind) or []
            scored = [(step["validation"].get(n, {}).get("skill"), n) for n in fits]
            scored = [(s, n) for s, n in scored if s is not None]
            newest.append(max(scored)[1] if scored else (newest[-1] if newest else None))
        out[kind] = {"served": served, "freeze_first": frozen, "newest": newest}
    return out


def _period_scores(model: Any, as_of_ms: int, every_ms: int, symbols: list[str]) -> Scored | None:
    """`model` and its baselines scored on the period after `as_of_ms`, on rows it never trained on."""
    from app.ml.dataset import build_dataset
    from app.ml.validation import unseen
    from app.services.cycle import data as cycle_data
    from app.services.cycle import training as cycle_ml

    end = as_of_ms + every_ms + int(model.horizon) * model.bar_ms
    candles = cycle_data.load_range(symbols, as_of_ms, end, model.timeframe, cycle_ml.warmup_bars(model))
    dataset = build_dataset(model, candles)
    mask = (dataset.ts_ms >= as_of_ms) & (dataset.ts_ms < as_of_ms + every_ms) & unseen(model, dataset)
    return score_model(model, dataset.subset(mask)) if mask.any() else None


def _brief(estimate: SkillEstimate) -> dict[str, Any]:
    return {"skill": estimate.skill, "interval": estimate.interval, "beats_baseline": estimate.beats_baseline,
            "n": estimate.n}


def _policy_entry(kind: str, parts: list[tuple[Any, Scored]], names: list[str | None]) -> dict[str, Any]:
    """One policy's record: headline skill, skill against each baseline and per symbol, kind extras."""
    from app.ml.trading import backtest_direction

    models = sorted(set(filter(None, names)))
    pooled = against_each(f"{kind}", [(scored, int(m.horizon), m.bar_ms) for m, scored in parts])
    if not pooled:
        return {"skill": None, "n": 0, "models": models}
    headline = strongest(pooled)
    rows = pooled[headline]
    entry: dict[str, Any] = {**skill_estimate(rows).as_dict(), "models": models,
                             "baseline_choice": "the strongest over the whole replay"}
    entry["against"] = {b: _brief(skill_estimate(r)) for b, r in pooled.items()}
    entry["by_symbol"] = {str(sym): _brief(skill_estimate(rows.subset(rows.symbol == sym)))
                          for sym in np.unique(rows.symbol)}
    y = np.concatenate([scored.ds.y for _, scored in parts])
    outputs = np.concatenate([np.where(scored.pred == 1, 1.0, -1.0) if kind == "direction" else scored.pred
                              for _, scored in parts])
    if kind == "direction":
        meta = pd.concat([scored.ds.meta for _, scored in parts], ignore_index=True)
        trading = backtest_direction(outputs, meta, parts[-1][0].timeframe)
        entry["trading"] = {k: v for k, v in trading.items() if k != "equity"}
        entry["equity"] = trading.get("equity")
    if kind == "risk":  # does a higher score mean a larger realized excursion?
        rho = spearmanr(outputs, y).statistic
        entry["spearman"] = None if not np.isfinite(rho) else round(float(rho), 4)
    if kind == "volatility":  # the variance forecast's own proper loss, lower is better
        entry["qlike"] = {"model": float(np.mean(losses.qlike(y, outputs)))} | {
            b: float(np.mean(losses.qlike(y, np.concatenate([scored.forecasts[b] for _, scored in parts]))))
            for b in pooled}
    entry["curve"] = cumulative_skill(rows)
    return entry


def score_replay(steps: list[dict[str, Any]], every_ms: int, symbols: list[str],
                 periods: Periods | None = None) -> dict[str, Any]:
    """Per kind and policy: pooled skill with its interval, the curve, and each kind's own figures.

    `periods` (ahead.py) holds the periods already scored while the steps ran; each (model, period) is
    scored once either way."""
    periods = periods or Periods(every_ms, symbols)
    kinds: dict[str, Any] = {}
    for kind, policies in policy_models(steps).items():
        kinds[kind] = {"policies": {}, "curves": {}}
        for policy, names in policies.items():
            parts = []
            for step, name in zip(steps, names, strict=True):
                if name is None:
                    continue
                found = periods.scores(name, int(step["as_of_ms"]))
                if found is not None:
                    parts.append((periods.model(name), found))
            entry = _policy_entry(kind, parts, names)
            ts, skill = entry.pop("curve", ([], []))
            kinds[kind]["policies"][policy] = entry
            if ts:
                kinds[kind]["curves"][policy] = {"ts_ms": ts, "skill": skill}
    return kinds


def decision_counts(steps: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """Per kind: champion-definition switches (a fresh fit of the same definition is no switch), drift
    flags and retrains over the steps."""
    kind_of: dict[str, str] = {}
    for step in steps:
        for kind, names in step["fits"].items():
            kind_of.update(dict.fromkeys(names, kind))
        kind_of.update({name: kind for kind, name in step["champions"].items()})
    counts: dict[str, dict[str, int]] = {}

    def entry(kind: str) -> dict[str, int]:
        return counts.setdefault(kind, {"switches": 0, "drift_flags": 0, "retrains": 0})

    previous: dict[str, str | None] = {}
    for step in steps:
        for kind, definition in (step.get("champion_definitions") or {}).items():
            if kind in previous and previous[kind] != definition:
                entry(kind)["switches"] += 1
            entry(kind)
            previous[kind] = definition
        for name in step["drift_flagged"]:
            if name in kind_of:
                entry(kind_of[name])["drift_flags"] += 1
        for name in step["retrains"]:
            if name in kind_of:
                entry(kind_of[name])["retrains"] += 1
    return counts
