"""Naive forecasts a model must beat, each named; their statistics come from TRAIN labels only.

- majority: the class most frequent among the train labels, every row.
- last_move: the label of row t-h, the newest fully known at t (the last move repeated).
- persistence: the same for a continuous label (last h-bar excursion or realized volatility).
- random_walk: a log return of 0, i.e. the price stays where it is (price kind).
- train_mean: the mean train label, every row.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def predictions(name: str, meta: pd.DataFrame, label_stats: dict) -> np.ndarray:
    """The baseline's forecast for each row; a missing past label falls back to the train statistic."""
    n = len(meta)
    fallback = label_stats["majority"] if name in ("majority", "last_move") else label_stats["mean"]
    if name in ("majority", "train_mean"):
        return np.full(n, float(fallback))
    if name == "random_walk":
        return np.zeros(n)
    if name in ("last_move", "persistence"):
        past = meta["past_label"].to_numpy(dtype="float64")
        return np.where(np.isnan(past), float(fallback), past)
    raise ValueError(f"unknown baseline {name!r}")
