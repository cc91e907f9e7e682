"""Uncertainty of metrics on time-ordered rows: block bootstrap intervals and effective sample sizes.

Rows of one model's evaluation are pooled across symbols, and neighbouring rows share label bars (a label
spans h bars) and volatility (errors cluster for hours). Neither the rows nor the symbols at one instant
are independent, so every statistic is resampled over *time*:

- `TimeAxis` groups rows by candle time; a metric is a function of per-time sums (counts, hits, losses).
- `Resampler` holds, for each bootstrap replicate, how often each time step was drawn by a circular block
  bootstrap (`arch.bootstrap.CircularBlockBootstrap`), so a replicate's sums are one matrix product
  (`counts @ sums`) and every metric gets its replicates at once.
- `block_length` is at least the horizon h and at least the Politis-White estimate
  (`arch.bootstrap.optimal_block_length`) for the series that matters (a loss differential).
- `long_run_variance` is the Bartlett-kernel HAC variance of statsmodels (`S_hac_simple`), and
  `effective_n` = T x var / long-run variance: how many independent time steps the series is worth.

Intervals are 95% percentile intervals of `DEFAULT_REPS` replicates, seeded, so a model's numbers are
reproducible.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from arch.bootstrap import CircularBlockBootstrap, optimal_block_length
from statsmodels.stats.sandwich_covariance import S_hac_simple

DEFAULT_REPS = 999
ALPHA = 0.05
MIN_BLOCKS = 5  # a block never exceeds a fifth of the series, so a replicate mixes at least 5 blocks


@dataclass(frozen=True)
class TimeAxis:
    """Rows grouped by candle time (ms): `inverse[i]` is row i's time step, in time order."""

    times: np.ndarray
    inverse: np.ndarray

    @property
    def n_times(self) -> int:
        return len(self.times)

    def sums(self, columns: np.ndarray) -> np.ndarray:
        """Per time step, the sum of each column over that step's rows: shape (T, Q)."""
        columns = np.asarray(columns, dtype="float64")
        if columns.ndim == 1:
            columns = columns[:, None]
        out = np.zeros((self.n_times, columns.shape[1]))
        np.add.at(out, self.inverse, columns)
        return out

    def means(self, values: np.ndarray) -> np.ndarray:
        """Per time step, the mean of `values` over its rows: shape (T,)."""
        counts = np.bincount(self.inverse, minlength=self.n_times)
        weights = np.asarray(values, dtype="float64")
        return np.bincount(self.inverse, weights=weights, minlength=self.n_times) / np.maximum(counts, 1)


def time_axis(ts_ms: np.ndarray) -> TimeAxis:
    times, inverse = np.unique(np.asarray(ts_ms, dtype="int64"), return_inverse=True)
    return TimeAxis(times=times, inverse=inverse.reshape(-1))


def block_length(series: np.ndarray, horizon: int) -> int:
    """Bootstrap block (and HAC bandwidth) in time steps: >= h and >= the Politis-White estimate."""
    x = np.asarray(series, dtype="float64")
    block = max(1, int(horizon))
    if len(x) >= 20 and np.std(x) > 0:
        estimate = float(optimal_block_length(x)["circular"].iloc[0])
        if math.isfinite(estimate):
            block = max(block, math.ceil(estimate))
    return int(max(1, min(block, len(x) // MIN_BLOCKS)))


def long_run_variance(series: np.ndarray, lags: int) -> float:
    """Bartlett-kernel (Newey-West) long-run variance of the mean-removed series, with `lags` lags."""
    x = np.asarray(series, dtype="float64")
    if len(x) < 2:
        return 0.0
    centred = (x - x.mean())[:, None]
    return float(S_hac_simple(centred, nlags=int(max(0, min(lags, len(x) - 1))))[0, 0] / len(x))


def effective_n(series: np.ndarray, lags: int) -> float:
    """T x var / long-run variance, within [1, T]: the independent observations the series is worth."""
    x = np.asarray(series, dtype="float64")
    if len(x) < 2:
        return float(len(x))
    variance, lrv = float(np.var(x)), long_run_variance(x, lags)
    if lrv <= 0 or variance <= 0:
        return float(len(x))
    return float(min(len(x), max(1.0, len(x) * variance / lrv)))


@dataclass(frozen=True)
class Resampler:
    """Draw counts per replicate and time step (reps x T) of a circular block bootstrap."""

    counts: np.ndarray
    block: int

    @property
    def reps(self) -> int:
        return len(self.counts)

    def replicate(self, sums: np.ndarray) -> np.ndarray:
        """Each replicate's totals of per-time sums (T, Q) -> (reps, Q)."""
        return self.counts @ np.asarray(sums, dtype="float64")


def resampler(n_times: int, block: int, reps: int = DEFAULT_REPS, seed: int = 0) -> Resampler:
    """`reps` circular block bootstrap draws of the time steps 0..T-1 (arch), as counts per step."""
    counts = np.zeros((reps, n_times))
    if n_times == 0:
        return Resampler(counts=counts, block=block)
    bootstrap = CircularBlockBootstrap(int(block), np.arange(n_times), seed=np.random.default_rng(seed))
    for r, (positional, _) in enumerate(bootstrap.bootstrap(reps)):
        counts[r] = np.bincount(positional[0], minlength=n_times)
    return Resampler(counts=counts, block=int(block))


def percentile_interval(values: np.ndarray, alpha: float = ALPHA) -> list[float] | None:
    """The (alpha/2, 1 - alpha/2) percentiles of the finite replicate values; None when there are none."""
    v = np.asarray(values, dtype="float64")
    v = v[np.isfinite(v)]
    if len(v) < 10:
        return None
    lo, hi = np.percentile(v, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    return [float(lo), float(hi)]


def standard_error(values: np.ndarray) -> float | None:
    v = np.asarray(values, dtype="float64")
    v = v[np.isfinite(v)]
    return float(np.std(v, ddof=1)) if len(v) >= 10 else None


def hac_t(series: np.ndarray, lags: int) -> float:
    """mean / sqrt(long-run variance / T): the Diebold-Mariano statistic of a loss differential."""
    x = np.asarray(series, dtype="float64")
    lrv = long_run_variance(x, lags)
    if len(x) < 2 or lrv <= 0:
        return 0.0
    return float(x.mean() / math.sqrt(lrv / len(x)))
