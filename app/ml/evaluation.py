"""A model scored row by row on rows it never trained on, and its skill with an interval (DESIGN 5).

The evaluation API (pure: models, datasets and arrays in, plain objects out). Validation, the
walk-forward folds, the cycle's rank and drift stages, tuning and replays all call it:

- `score(model, ds) -> Scored`: the model's outputs on the rows of `ds` (the caller guarantees it never
  trained on them), every naive baseline's forecast, and per-row losses on the ranking score: Brier of
  P(class 1) for classifiers, squared error for regressors. The strongest baseline is the one with the
  lowest mean loss on these very rows.
- `Scored.rows(name) -> RowScores`: per-row losses of the model and of its strongest baseline, with
  each row's symbol and time; what paired tests compare (`app.ml.comparison`).
- `skill_estimate(rows) -> SkillEstimate`: skill = 1 - L/L_b (classifiers: Brier skill) or
  1 - sqrt(L/L_b) (regressors: RMSE skill), its 95% block-bootstrap interval and standard error, the
  effective n, the bootstrap block and the time range of the rows. `beats_baseline` = lower end > 0.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from app.ml import baselines, intervals, losses
from app.ml.dataset import Dataset

if TYPE_CHECKING:
    from app.ml.base import BaseModel


@dataclass(frozen=True)
class RowScores:
    """Per-row ranking losses of one model and of its strongest baseline, on rows it never trained on."""

    name: str
    symbol: np.ndarray
    ts_ms: np.ndarray
    loss: np.ndarray
    baseline_loss: np.ndarray
    baseline: str
    horizon: int
    bar_ms: int
    root: bool  # RMSE-style skill (regressors) rather than Brier-style (classifiers)

    def __len__(self) -> int:
        return len(self.loss)

    @property
    def skill(self) -> float | None:
        if not len(self):
            return None
        value = float(losses.skill_from_totals(self.loss.sum(), self.baseline_loss.sum(), self.root))
        return value if np.isfinite(value) else None

    def subset(self, mask: np.ndarray) -> RowScores:
        return RowScores(self.name, self.symbol[mask], self.ts_ms[mask], self.loss[mask],
                         self.baseline_loss[mask], self.baseline, self.horizon, self.bar_ms, self.root)


@dataclass(frozen=True)
class Scored:
    """A model's outputs on rows with known outcomes, beside every baseline's, ready for metrics."""

    ds: Dataset
    pred: np.ndarray  # class index (classifiers) or forecast (regressors)
    confidence: np.ndarray | None
    p1: np.ndarray | None  # classifiers: P(class 1)
    forecasts: dict[str, np.ndarray]  # baseline -> P(class 1) (classifiers) or forecast (regressors)
    loss: np.ndarray  # ranking loss per row
    baseline_losses: dict[str, np.ndarray]
    baseline: str  # the strongest: lowest mean ranking loss on these rows
    root: bool

    def rows(self, name: str, horizon: int, bar_ms: int, baseline: str | None = None) -> RowScores:
        """Against the strongest baseline on these rows, or against `baseline`."""
        chosen = baseline or self.baseline
        return RowScores(name, self.ds.meta["symbol"].to_numpy(), self.ds.ts_ms, self.loss,
                         self.baseline_losses[chosen], chosen, horizon, bar_ms, self.root)


def score(model: BaseModel, ds: Dataset) -> Scored:
    """Outputs and per-row losses of `model` and of each of its naive baselines on the rows of `ds`."""
    pred, confidence = model.outputs(ds.X, ds.meta)
    stats = model.calibration_["labels"]
    names = baselines.available(model.baseline_names, stats)
    if model.is_classifier:
        p1 = np.where(pred == 1, confidence, 1.0 - confidence)
        forecasts = {n: baselines.probabilities(n, ds.meta, stats) for n in names}
        loss = losses.brier(ds.y, p1)
        baseline_losses = {n: losses.brier(ds.y, f) for n, f in forecasts.items()}
    else:
        p1 = None
        forecasts = {n: baselines.predictions(n, ds.meta, stats) for n in names}
        loss = losses.squared(ds.y, pred)
        baseline_losses = {n: losses.squared(ds.y, f) for n, f in forecasts.items()}
    best = min(baseline_losses, key=lambda n: float(np.mean(baseline_losses[n])))
    return Scored(ds, pred, confidence, p1, forecasts, loss, baseline_losses, best, not model.is_classifier)


def row_scores(model: BaseModel, ds: Dataset, name: str | None = None) -> RowScores:
    """Per-row losses of `model` and its strongest baseline on `ds` (rows it never trained on)."""
    label = name or str(getattr(model, "name_", None) or type(model).__name__)
    return score(model, ds).rows(label, int(model.horizon), model.bar_ms)


@dataclass(frozen=True)
class SkillEstimate:
    """A skill with its uncertainty, and the rows it was measured on."""

    skill: float | None
    interval: list[float] | None
    se: float | None
    n: int
    n_times: int
    n_effective: float
    block: int
    baseline: str
    start_ms: int | None
    end_ms: int | None

    @property
    def beats_baseline(self) -> bool:
        return self.interval is not None and self.interval[0] > 0

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "beats_baseline": self.beats_baseline}


def skill_estimate(
    rows: RowScores, reps: int = intervals.DEFAULT_REPS, seed: int = 0, alpha: float = intervals.ALPHA
) -> SkillEstimate:
    """Skill over the strongest baseline with a block-bootstrap interval over time (see app.ml.intervals)."""
    if not len(rows):
        return SkillEstimate(None, None, None, 0, 0, 0.0, 0, rows.baseline, None, None)
    axis = intervals.time_axis(rows.ts_ms)
    difference = axis.means(rows.loss - rows.baseline_loss)
    block = intervals.block_length(difference, rows.horizon)
    sums = axis.sums(np.column_stack([rows.loss, rows.baseline_loss]))
    totals = intervals.resampler(axis.n_times, block, reps, seed).replicate(sums)
    replicates = losses.skill_from_totals(totals[:, 0], totals[:, 1], rows.root)
    return SkillEstimate(
        skill=rows.skill, interval=intervals.percentile_interval(replicates, alpha),
        se=intervals.standard_error(replicates), n=len(rows), n_times=axis.n_times,
        n_effective=round(intervals.effective_n(difference, block), 1), block=block, baseline=rows.baseline,
        start_ms=int(rows.ts_ms.min()), end_ms=int(rows.ts_ms.max()),
    )


def estimate_from_performance(performance: dict[str, Any], rows: int | None = None) -> SkillEstimate:
    """The `SkillEstimate` a performance dict (validation.evaluate_dataset's output) holds."""
    return SkillEstimate(
        skill=performance.get("skill"), interval=performance.get("skill_interval"),
        se=performance.get("skill_se"), n=int(rows if rows is not None else performance.get("n") or 0),
        n_times=int(performance.get("n_times") or 0),
        n_effective=float(performance.get("n_effective") or 0.0),
        block=int(performance.get("block_bars") or 0),
        baseline=str(performance.get("baseline")), start_ms=performance.get("start_ms"),
        end_ms=performance.get("end_ms"),
    )
