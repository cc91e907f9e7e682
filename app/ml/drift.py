"""Feature drift (DESIGN 6), recorded beside the skill drift of `app.ml.lifecycle.drift_verdict`.

Pure functions over feature frames; the cycle's drift job feeds them and records the numbers they return.

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
from typing import Any

import numpy as np
import pandas as pd

PSI_BINS = 10
PSI_FACTOR = 1.5
PSI_FLOOR = 0.10
DAY_BARS_1M = 1440


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
