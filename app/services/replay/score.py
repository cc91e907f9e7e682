"""Scoring what a replay served: each step's models on the period after it, once its horizons passed.

After step i (time T_i) the API would serve step i's champions until T_i + every. Their answers in that
period are scored on the candles that followed (labels only from later bars; the rows start at the newest
candle known at T_i, and any row the model trained on is left out). Three policies per kind:

- `served`: the champion each step chose (what the API would have served);
- `freeze_first`: the first champion the replay had, served for ever;
- `newest`: each step's own fit with the best validation score (the point-estimate rule, no test).

Pooled over the steps, each policy gets a skill over the serving model's strongest baseline with a
block-bootstrap interval (app.ml.served, app.ml.evaluation); direction gets the trading result after
fees and slippage beside buy and hold (app.ml.trading), and risk the Spearman rank correlation between
its score and the realized excursion.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from app.ml.evaluation import RowScores, skill_estimate
from app.ml.evaluation import score as score_model
from app.ml.served import cumulative_skill, pool

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


def _period_rows(model: Any, name: str, as_of_ms: int, every_ms: int, symbols: list[str]
                 ) -> tuple[RowScores, np.ndarray, pd.DataFrame] | None:
    from app.ml.dataset import build_dataset
    from app.ml.validation import unseen
    from app.services.cycle import data as cycle_data
    from app.services.cycle import training as cycle_ml

    end = as_of_ms + every_ms + int(model.horizon) * model.bar_ms
    candles = cycle_data.load_range(symbols, as_of_ms, end, model.timeframe, cycle_ml.warmup_bars(model))
    dataset = build_dataset(model, candles)
    mask = (dataset.ts_ms >= as_of_ms) & (dataset.ts_ms < as_of_ms + every_ms) & unseen(model, dataset)
    if not mask.any():
        return None
    rows = dataset.subset(mask)
    scored = score_model(model, rows)
    outputs = np.where(scored.pred == 1, 1.0, -1.0) if model.kind == "direction" else scored.pred
    meta = rows.meta.assign(_y=rows.y, _out=outputs)
    return scored.rows(name, int(model.horizon), model.bar_ms), outputs, meta


def score_replay(steps: list[dict[str, Any]], every_ms: int, symbols: list[str]) -> dict[str, Any]:
    """Per kind and policy: pooled skill with its interval, the curve, and direction's trading result."""
    from app.ml.trading import backtest_direction
    from app.services.models import load_model

    models: dict[str, Any] = {}

    def model_of(name: str) -> Any:
        if name not in models:
            models[name] = load_model(name)
        return models[name]

    kinds: dict[str, Any] = {}
    for kind, policies in policy_models(steps).items():
        kinds[kind] = {"policies": {}, "curves": {}}
        for policy, names in policies.items():
            parts, positions, metas, timeframe = [], [], [], "1m"
            for step, name in zip(steps, names, strict=True):
                if name is None:
                    continue
                model = model_of(name)
                timeframe = model.timeframe
                found = _period_rows(model, name, int(step["as_of_ms"]), every_ms, symbols)
                if found is not None:
                    parts.append(found[0])
                    positions.append(found[1])
                    metas.append(found[2])
            rows = pool(f"{kind}:{policy}", parts)
            if rows is None:
                kinds[kind]["policies"][policy] = {"skill": None, "n": 0,
                                                   "models": sorted(set(filter(None, names)))}
                continue
            estimate = skill_estimate(rows).as_dict()
            entry = {**estimate, "models": sorted(set(filter(None, names)))}
            if kind == "direction" and metas:
                trading = backtest_direction(np.concatenate(positions), pd.concat(metas, ignore_index=True),
                                             timeframe)
                entry["trading"] = {k: v for k, v in trading.items() if k != "equity"}
                entry["equity"] = trading.get("equity")
            if kind == "risk" and metas:  # does a higher score mean a larger realized excursion?
                pooled = pd.concat(metas, ignore_index=True)
                rho = spearmanr(pooled["_out"], pooled["_y"]).statistic
                entry["spearman"] = None if not np.isfinite(rho) else round(float(rho), 4)
            kinds[kind]["policies"][policy] = entry
            ts, skill = cumulative_skill(rows)
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
