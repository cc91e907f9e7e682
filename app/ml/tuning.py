"""The tuner's objective and its verdict (DESIGN 10). Pure: candles and definitions in, numbers out.

- `trial_value(definition, train_candles, folds, report, train_features)`: the mean walk-forward skill
  (the proper-score skill of DESIGN 5) of a definition on the train part only. `train_candles` end before
  the holdout, so no trial can read a holdout candle; `report(fold, mean_so_far)` lets a pruner stop a
  trial whose folds fall behind (it raises to stop).
- `holdout_verdict(...)`: the best trial's definition and the current one, each fitted on the whole train
  part and scored on the holdout rows (after the cut) neither saw, with the paired test of DESIGN 6
  (`comparison.paired_test`, the between-fit variance from the two trials' aligned folds). Adopted only
  when better at `alpha`; the record carries the number of trials, since the best of many is optimistic.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from app.core.errors import BadInput
from app.ml.comparison import between_fits, paired_test
from app.ml.dataset import build_dataset
from app.ml.evaluation import row_scores, skill_estimate
from app.ml.training import model_from_definition
from app.ml.walk_forward import walk_forward

ALPHA = 0.05
OBJECTIVE = "mean walk-forward skill (train part only)"


def trial_value(
    definition: Mapping[str, Any], train_candles: Mapping[str, pd.DataFrame], folds: int,
    report: Callable[[int, float], None] | None = None,
    train_features: Mapping[str, pd.DataFrame] | None = None,
) -> dict[str, Any]:
    """The definition's walk-forward folds on the train part; `mean_skill` is the trial's value.
    `train_features`: its features on `train_candles`, when the caller computed them (else computed here)."""
    if folds < 2:
        raise BadInput(f"a study needs at least 2 walk-forward folds to compare definitions, got {folds}")
    model = model_from_definition(definition)
    ds = build_dataset(model, train_candles, train_features)

    def on_fold(fold: int, skills: list[float]) -> None:
        if report is not None and skills:
            report(fold, float(np.mean(skills)))

    result = walk_forward(model, ds, folds=folds, on_fold=on_fold)
    if result["mean_skill"] is None:
        raise BadInput(f"no fold of {definition.get('name')!r} could be fitted: "
                       + "; ".join(str(f.get("error")) for f in result["folds"]))
    return result


@dataclass(frozen=True)
class HoldoutVerdict:
    adopt: bool
    reason: str
    current_skill: float | None
    best_skill: float | None
    current_interval: list[float] | None
    best_interval: list[float] | None
    test: dict[str, Any]
    holdout_rows: int
    trials: int
    alpha: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _fitted_scores(definition: Mapping[str, Any], train: Mapping[str, pd.DataFrame],
                   window: Mapping[str, pd.DataFrame], cut_ms: int, label: str) -> Any:
    model = model_from_definition(definition)
    ds = build_dataset(model, train)
    model.fit(ds.X, ds.y, ds.meta)
    rows = build_dataset(model, window)
    return row_scores(model, rows.subset(rows.ts_ms >= cut_ms), label)


def holdout_verdict(
    current: Mapping[str, Any], best: Mapping[str, Any], *, train_candles: Mapping[str, pd.DataFrame],
    window_candles: Mapping[str, pd.DataFrame], cut_ms: int, folds_current: Mapping[str, Any] | None,
    folds_best: Mapping[str, Any] | None, trials: int, alpha: float = ALPHA, seed: int = 42,
) -> HoldoutVerdict:
    """Current and best, fitted on the train part (candles before `cut_ms`), on the holdout rows at or
    after `cut_ms`: the best is adopted only when the one-sided paired test says better at `alpha`."""
    old = _fitted_scores(current, train_candles, window_candles, cut_ms, "current")
    new = _fitted_scores(best, train_candles, window_candles, cut_ms, "best trial")
    test = paired_test(old, new, "b_better", between_fits(folds_current, folds_best, aligned=True))
    est_old, est_new = skill_estimate(old, seed=seed), skill_estimate(new, seed=seed)
    same = _same(current, best)
    if same:
        adopt, reason = False, f"the best of {trials} trials is the current definition: nothing to adopt"
    elif test.significant(alpha):
        adopt = True
        reason = (f"the best of {trials} trials beats the current definition on {test.n} holdout rows "
                  f"(p = {test.p_value:.3g} < {alpha:g})")
    else:
        adopt = False
        reason = (f"the best of {trials} trials is not better than the current definition at {alpha:g} on "
                  f"{test.n} holdout rows (p = {test.p_value:.3g}): the current definition stays")
    return HoldoutVerdict(adopt, reason, est_old.skill, est_new.skill, est_old.interval, est_new.interval,
                          test.as_dict(), test.n, trials, alpha)


def _same(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    return dict(a.get("config") or {}) == dict(b.get("config") or {}) and sorted(
        a.get("features") or []) == sorted(b.get("features") or [])
