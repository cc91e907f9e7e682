"""Paired tests of two models on the same rows (DESIGN 6): Diebold-Mariano with a HAC variance.

API (pure):
- `common_rows(a, b) -> (a', b')`: both models' `RowScores` restricted to the rows (symbol, time) they
  share, in the same order.
- `paired_test(a, b, alternative=..., between=Between(...)) -> PairedTest`: is B's skill different?
- `between_fits(walk_forward_a, walk_forward_b) -> Between`: how much the difference moves from one
  period and one fit to the next, from the two definitions' walk-forward folds.

The per-row statistic is d = L_a / mean(L_a,baseline) - L_b / mean(L_b,baseline): each model's loss in
units of its own strongest baseline's mean loss on the common rows, so it compares skills (two models of
one kind with different horizons answer different questions; what they share is how much better than
naive each is). For two models with one target this is the plain loss differential, scaled. Rows are
averaged per candle time (symbols at one instant are not independent), and the mean of d over time is
tested with the Bartlett-kernel HAC variance of statsmodels. The bandwidth L is 4 bootstrap blocks (a
block is >= h and >= the Politis-White estimate, app.ml.intervals), and the statistic is referred to
Student's t with 3T / (2L) degrees of freedom (the equivalent degrees of freedom of a Bartlett estimate
at frequency zero), not to the normal: losses cluster for hours, the long-run variance is itself noisy,
and with T - 1 degrees of freedom the test switched champions 8% of the time between equal models in
the tests' simulation (tests/ml/test_lifecycle_rules.py) instead of 5%. mean(d) > 0 means B is better.

The rows of one holdout show how two *fitted models* differ. A decision about *definitions* (which one
serves from now on; is the refit worse) must also allow for how much a definition's fits differ from one
window to the next, and its skill from one period to the next: two definitions of equal merit have
fits that beat each other on any one holdout, often significantly with thousands of rows. So the
variance of mean(d) is the HAC variance plus `between`: the variance across the walk-forward folds of
the two definitions' loss-ratio difference (folds of one window: the same periods), or the sum of each
definition's fold variance when their folds are not aligned (two windows). Its degrees of freedom (K - 1)
join the HAC's by Welch-Satterthwaite. Without folds (K = 0) the test is the plain DM test.

The result carries the statistic, the p-value, the 95% interval
of mean(d), the rows, the effective n and the time range: what a decision row records.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
from scipy import stats

from app.ml import intervals
from app.ml.evaluation import RowScores

Alternative = Literal["b_better", "b_worse", "two_sided"]
TEST_NAME = "diebold_mariano_hac"
BANDWIDTH_BLOCKS = 4


@dataclass(frozen=True)
class PairedTest:
    """B against A on the same rows; `statistic` > 0 and `mean_difference` > 0 mean B is better."""

    test: str
    a: str
    b: str
    alternative: str
    statistic: float
    p_value: float
    mean_difference: float
    interval: list[float] | None
    skill_a: float | None
    skill_b: float | None
    n: int
    n_times: int
    n_effective: float
    lags: int
    start_ms: int | None
    end_ms: int | None
    between_variance: float = 0.0
    df: float | None = None

    def significant(self, alpha: float = 0.05) -> bool:
        return self.p_value < alpha

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Between:
    """Variance of the loss-ratio difference between fits and periods, and its degrees of freedom."""

    variance: float = 0.0
    df: float = math.inf


def _fold_ratios(walk_forward: Mapping[str, Any] | None) -> list[float | None]:
    folds = (walk_forward or {}).get("folds") or []
    return [f.get("loss_ratio") for f in folds]


def between_fits(
    walk_forward_a: Mapping[str, Any] | None, walk_forward_b: Mapping[str, Any] | None, aligned: bool
) -> Between:
    """From two `walk_forward` results: var over folds of r_a - r_b when `aligned` (same window), else
    var(r_a) + var(r_b); nothing when either has fewer than 2 usable folds."""
    ra, rb = _fold_ratios(walk_forward_a), _fold_ratios(walk_forward_b)
    if aligned and len(ra) == len(rb):
        diffs = [x - y for x, y in zip(ra, rb, strict=True) if x is not None and y is not None]
        if len(diffs) >= 2:
            return Between(float(np.var(diffs, ddof=1)), float(len(diffs) - 1))
        return Between()
    xa, xb = [x for x in ra if x is not None], [y for y in rb if y is not None]
    if len(xa) < 2 or len(xb) < 2:
        return Between()
    va, vb = float(np.var(xa, ddof=1)), float(np.var(xb, ddof=1))
    df = _welch(va, len(xa) - 1, vb, len(xb) - 1)
    return Between(va + vb, df)


def _welch(v1: float, df1: float, v2: float, df2: float) -> float:
    """Welch-Satterthwaite degrees of freedom of a sum of two variance estimates."""
    denominator = (v1 * v1 / df1 if v1 > 0 else 0.0) + (v2 * v2 / df2 if v2 > 0 else 0.0)
    return (v1 + v2) ** 2 / denominator if denominator > 0 else math.inf


def common_rows(a: RowScores, b: RowScores) -> tuple[RowScores, RowScores]:
    """Both restricted to the (symbol, time) rows they share, in one order."""
    key_a = np.char.add(np.char.add(a.symbol.astype(str), "|"), a.ts_ms.astype(str))
    key_b = np.char.add(np.char.add(b.symbol.astype(str), "|"), b.ts_ms.astype(str))
    shared, ia, ib = np.intersect1d(key_a, key_b, return_indices=True)
    del shared
    return a.subset(ia), b.subset(ib)


def _empty(a: RowScores, b: RowScores, alternative: str) -> PairedTest:
    return PairedTest(TEST_NAME, a.name, b.name, alternative, 0.0, 1.0, 0.0, None, None, None, 0, 0, 0.0, 0,
                      None, None)


def paired_test(
    a: RowScores, b: RowScores, alternative: Alternative = "b_better", between: Between | None = None
) -> PairedTest:
    """Diebold-Mariano test of B's skill against A's on the rows both were scored on (see module doc)."""
    between = between or Between()
    a, b = common_rows(a, b)
    if len(a) < 2:
        return _empty(a, b, alternative)
    scale_a, scale_b = float(a.baseline_loss.mean()), float(b.baseline_loss.mean())
    if scale_a <= 0 or scale_b <= 0:
        return _empty(a, b, alternative)
    axis = intervals.time_axis(a.ts_ms)
    d = axis.means(a.loss / scale_a - b.loss / scale_b)
    T = len(d)
    block = intervals.block_length(d, max(a.horizon, b.horizon))
    lags = max(1, min(BANDWIDTH_BLOCKS * block, T // 2))
    sampling = intervals.long_run_variance(d, lags) / T
    total = sampling + between.variance
    se = math.sqrt(total) if total > 0 else 0.0
    mean = float(d.mean())
    statistic = mean / se if se > 0 else 0.0
    df = max(_welch(sampling, 1.5 * T / lags, between.variance, between.df), 1.0)
    dist = stats.t(df=df)
    if alternative == "b_better":
        p = float(dist.sf(statistic))
    elif alternative == "b_worse":
        p = float(dist.cdf(statistic))
    else:
        p = float(2 * dist.sf(abs(statistic)))
    if se == 0:
        p = 1.0
    half = float(dist.ppf(0.975)) * se
    return PairedTest(
        test=TEST_NAME, a=a.name, b=b.name, alternative=alternative, statistic=round(statistic, 6),
        p_value=p, mean_difference=mean, interval=[mean - half, mean + half] if se > 0 else None,
        skill_a=a.skill, skill_b=b.skill, n=len(a), n_times=T,
        n_effective=round(intervals.effective_n(d, block), 1), lags=lags,
        start_ms=int(a.ts_ms.min()), end_ms=int(a.ts_ms.max()), between_variance=between.variance,
        df=round(df, 2),
    )
