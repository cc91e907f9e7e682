"""Drift (DESIGN 6): the accuracy (skill) drop that flags a model, feature drift, and the retrain verdict.

Pure functions over metrics dicts and feature frames; the cycle's drift job feeds them and records the
numbers they return.

Feature drift uses the population stability index (PSI) of each feature between the model's training
window and the last 24 hours. 1-minute features are strongly autocorrelated and the market changes
regime within days, so a fixed PSI cut-off (the textbook 0.2) fires on almost every day even without a
real change. The threshold is therefore calibrated per feature on the training window itself: the PSI
between consecutive 24-hour windows inside it measures how much "normal" days differ, and a feature drifts
only when the live day is further from the training distribution than `factor` x the largest of those
day-to-day distances (and never below `floor`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

ACCURACY_DRIFT_THRESHOLD = 0.05
PSI_BINS = 10
PSI_FACTOR = 1.5
PSI_FLOOR = 0.10
DAY_BARS_1M = 1440


def metric(metrics: Mapping[str, Any] | None, name: str) -> float | None:
    """A metric by its DESIGN name, accepting the `backtest_` prefix metadata.json uses."""
    if not metrics:
        return None
    for key in (name, f"backtest_{name}"):
        value = metrics.get(key)
        if isinstance(value, int | float) and math.isfinite(float(value)):
            return float(value)
    return None


@dataclass(frozen=True)
class AccuracyDrift:
    metric: str  # accuracy (classifiers) | skill (regressors)
    backtest: float | None
    live: float | None
    drop: float | None
    threshold: float
    flagged: bool
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def accuracy_drift(
    backtest: Mapping[str, Any],
    live: Mapping[str, Any],
    *,
    is_classifier: bool,
    threshold: float = ACCURACY_DRIFT_THRESHOLD,
) -> AccuracyDrift:
    """Flag when the validation accuracy (skill for regressors) minus the live one exceeds `threshold`."""
    name = "accuracy" if is_classifier else "skill"
    before, now = metric(backtest, name), metric(live, name)
    if before is None or now is None:
        return AccuracyDrift(name, before, now, None, threshold, False, f"no {name} to compare")
    drop = before - now
    flagged = drop > threshold
    verb = "exceeds" if flagged else "within"
    reason = f"{name} {before:.4f} at validation, {now:.4f} live: drop {drop:+.4f} {verb} {threshold}"
    return AccuracyDrift(name, before, now, round(drop, 6), threshold, flagged, reason)


def psi(reference: np.ndarray, current: np.ndarray, bins: int = PSI_BINS) -> float:
    """Population stability index of `current` against `reference`, on the reference's quantile bins."""
    ref = np.asarray(reference, dtype=float)
    cur = np.asarray(current, dtype=float)
    ref, cur = ref[np.isfinite(ref)], cur[np.isfinite(cur)]
    if len(ref) < bins or len(cur) < bins:
        return float("nan")
    edges = np.unique(np.quantile(ref, np.linspace(0, 1, bins + 1)[1:-1]))
    ref_counts = np.bincount(np.searchsorted(edges, ref, side="right"), minlength=len(edges) + 1)
    cur_counts = np.bincount(np.searchsorted(edges, cur, side="right"), minlength=len(edges) + 1)
    eps = 1e-4
    p = np.clip(ref_counts / len(ref), eps, None)
    q = np.clip(cur_counts / len(cur), eps, None)
    return float(np.sum((q - p) * np.log(q / p)))


def _day_windows(frame: pd.DataFrame, window_bars: int) -> list[pd.DataFrame]:
    n = len(frame) // window_bars
    if n < 2:
        half = len(frame) // 2
        return [frame.iloc[:half], frame.iloc[half:]] if half else []
    start = len(frame) - n * window_bars
    return [frame.iloc[start + i * window_bars : start + (i + 1) * window_bars] for i in range(n)]


def feature_drift(
    train: pd.DataFrame,
    live: pd.DataFrame,
    *,
    window_bars: int = DAY_BARS_1M,
    factor: float = PSI_FACTOR,
    floor: float = PSI_FLOOR,
) -> dict[str, dict[str, Any]]:
    """Per feature: PSI(training window, live window), its calibrated threshold and whether it drifted."""
    out: dict[str, dict[str, Any]] = {}
    windows = _day_windows(train, window_bars)
    for column in train.columns:
        if column not in live.columns:
            continue
        distance = psi(train[column].to_numpy(), live[column].to_numpy())
        normal = [
            psi(a[column].to_numpy(), b[column].to_numpy())
            for a, b in zip(windows, windows[1:], strict=False)
        ]
        normal = [d for d in normal if math.isfinite(d)]
        baseline = max(normal) if normal else 0.0
        threshold = max(floor, factor * baseline)
        drifted = bool(math.isfinite(distance) and distance > threshold)
        out[column] = {
            "psi": round(distance, 5) if math.isfinite(distance) else None,
            "day_to_day_psi": round(baseline, 5),
            "threshold": round(threshold, 5),
            "drifted": drifted,
        }
    return out


@dataclass(frozen=True)
class RetrainVerdict:
    metric: str  # f1 (classifiers) | rmse (regressors)
    old: float | None
    new: float | None
    promote: bool
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def retrain_verdict(old: Mapping[str, Any], new: Mapping[str, Any], *, is_classifier: bool) -> RetrainVerdict:
    """Promote the retrained version only if strictly better on the same holdout: F1 up, or RMSE down."""
    name = "f1" if is_classifier else "rmse"
    before, after = metric(old, name), metric(new, name)
    if after is None:
        return RetrainVerdict(name, before, after, False, f"the retrained version has no {name}")
    if before is None:
        return RetrainVerdict(name, before, after, True, f"the old version has no {name} on the holdout")
    better = after > before if is_classifier else after < before
    word = "better" if better else "not better"
    reason = f"{name} {after:.5f} (new) vs {before:.5f} (old) on the same holdout: {word}"
    return RetrainVerdict(name, before, after, better, reason)
