"""Walk-forward validation of a model *definition* inside its train part (DESIGN 5).

The train part's time span is cut into K + 1 equal blocks. Fold i (1..K) fits a fresh clone of the
definition (same class, hyperparameters, features, horizon) on every row before block i whose label ends
before it (an embargo of h bars, purged), and scores it on block i: K expanding folds, each followed by
an embargo and a test block. The holdout never takes part. Fold skills measure the definition (what a
tuner optimises, DESIGN 10); the holdout measures the one fitted model. Both are reported.

API: `fold_masks(ts_ms, horizon, bar_ms, k) -> list[Fold]` (the geometry, testable alone) and
`walk_forward(model, train_ds, folds=K) -> dict` (`{"k", "embargo_bars", "folds": [...], "mean_skill",
"skill_sd", "min_skill", "max_skill", "folds_beating_baseline"}`; each fold has its `skill` and
`loss_ratio` L / L_baseline; a fold that cannot be fitted, e.g. a single class in it, records its error
instead of a skill). `period_skills` are the skills of the folds' test rows cut into 12-hour periods
(what a drift check sees between two cycles): their spread `period_skill_sd` says how far one 12-hour
skill normally is from another for this definition (regimes, fits and sampling noise together), and
`skill_sd` the same across folds; the lifecycle tests use them (app.ml.lifecycle).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from sklearn.base import clone

from app.core.errors import BadInput
from app.data.frames import HOUR_MS
from app.ml.dataset import Dataset
from app.ml.evaluation import RowScores, row_scores

if TYPE_CHECKING:
    from app.ml.base import BaseModel

DEFAULT_FOLDS = 4
PERIOD_HOURS = 12.0  # the cycle's interval: how much unseen data a serving model meets before drift checks it


@dataclass(frozen=True)
class Fold:
    index: int
    train: np.ndarray  # row masks over the train part
    test: np.ndarray
    test_start_ms: int
    test_end_ms: int


def fold_masks(ts_ms: np.ndarray, horizon: int, bar_ms: int, k: int = DEFAULT_FOLDS) -> list[Fold]:
    """K expanding folds over rows at times `ts_ms`: train before block i (purged by h bars), test on it."""
    if k < 0:
        raise BadInput(f"walk-forward folds must be 0 or more, got {k}")
    ts = np.asarray(ts_ms, dtype="int64")
    if k == 0 or ts.size == 0:
        return []
    first, last = int(ts.min()), int(ts.max())
    bars = (last - first) // bar_ms + 1
    edges = [first + math.ceil(bars * i / (k + 1)) * bar_ms for i in range(k + 2)]
    folds = []
    for i in range(1, k + 1):
        start, end = edges[i], edges[i + 1]
        test = (ts >= start) & ((ts < end) if i < k else (ts <= last))
        train = ts + int(horizon) * bar_ms < start
        folds.append(Fold(i, train, test, start, min(end - bar_ms, last)))
    return folds


def walk_forward(
    model: BaseModel, train: Dataset, folds: int = DEFAULT_FOLDS,
    on_fold: Callable[[int, list[float]], None] | None = None,
) -> dict[str, Any]:
    """Fold skills of `model`'s definition on its train part `train` (never the holdout).

    `on_fold(fold, skills_so_far)` is called after each fold (the tuner's pruner listens there; an
    exception it raises stops the folds)."""
    horizon = int(model.horizon)
    results: list[dict[str, Any]] = []
    periods: list[float] = []
    for fold in fold_masks(train.ts_ms, horizon, model.bar_ms, folds):
        entry: dict[str, Any] = {
            "fold": fold.index, "train_rows": int(fold.train.sum()), "test_rows": int(fold.test.sum()),
            "test_start": _iso(fold.test_start_ms), "test_end": _iso(fold.test_end_ms),
        }
        began = time.perf_counter()
        try:
            fitted = clone(model)
            fit_part = train.subset(fold.train)
            fitted.fit(fit_part.X, fit_part.y, fit_part.meta)
            rows = row_scores(fitted, train.subset(fold.test))
        except (BadInput, ValueError) as exc:  # too few rows or one class in a fold: record, go on
            results.append({**entry, "skill": None, "error": str(getattr(exc, "message", exc))})
            continue
        ratio = float(rows.loss.sum() / rows.baseline_loss.sum()) if rows.baseline_loss.sum() > 0 else None
        periods.extend(_period_skills(rows, int(PERIOD_HOURS * HOUR_MS)))
        results.append({**entry, "skill": rows.skill, "loss_ratio": ratio, "baseline": rows.baseline,
                        "seconds": round(time.perf_counter() - began, 4),
                        "train_start": _iso(int(fit_part.ts_ms.min())),
                        "train_end": _iso(int(fit_part.ts_ms.max()))})
        if on_fold is not None:
            on_fold(fold.index, [r["skill"] for r in results if r.get("skill") is not None])
    skills = [r["skill"] for r in results if r.get("skill") is not None]
    return {
        "k": int(folds), "embargo_bars": horizon, "folds": results,
        "mean_skill": float(np.mean(skills)) if skills else None,
        "skill_sd": float(np.std(skills, ddof=1)) if len(skills) > 1 else None,
        "min_skill": float(min(skills)) if skills else None,
        "max_skill": float(max(skills)) if skills else None,
        "folds_beating_baseline": int(sum(s > 0 for s in skills)),
        "period_hours": PERIOD_HOURS, "period_skills": periods,
        "period_skill_sd": float(np.std(periods, ddof=1)) if len(periods) > 1 else None,
    }


def _period_skills(rows: RowScores, period_ms: int) -> list[float]:
    """Skill of each whole `period_ms` stretch of the rows (stretches at least half covered)."""
    if not len(rows):
        return []
    start = int(rows.ts_ms.min())
    which = (rows.ts_ms - start) // period_ms
    bars = period_ms // rows.bar_ms
    out = []
    for p in np.unique(which):
        mask = which == p
        if len(np.unique(rows.ts_ms[mask])) * 2 >= bars:
            skill = rows.subset(mask).skill
            if skill is not None:
                out.append(skill)
    return out


def _iso(ms: int) -> str:
    return pd.Timestamp(ms, unit="ms", tz="UTC").isoformat()
