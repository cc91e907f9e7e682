"""Naive forecasts a model must beat, each named; their statistics come from TRAIN labels only.

- majority: the class most frequent among the train labels, every row (as a probability: 0 or 1).
- last_move: the label of row t-h, the newest fully known at t (the last move repeated; 0 or 1).
- base_rate: the train frequency of class 1 as the probability, every row (its class is the majority).
- persistence: the last fully known continuous label (last h-bar excursion or realized volatility).
- random_walk: a log return of 0, i.e. the price stays where it is (price kind).
- train_mean: the mean train label, every row.
- har_rv: HAR-RV with a time-of-day profile (volatility; see app.ml.har), fitted on train rows.

A forecast a baseline cannot make for a row (no past label yet, a HAR lag missing) falls back to the
train statistic (or to persistence for HAR-RV), so every baseline forecasts every row.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from app.ml import har

PROBABILISTIC = ("majority", "last_move", "base_rate")


def available(names: tuple[str, ...], label_stats: dict) -> list[str]:
    """The baselines whose train statistics exist (HAR-RV needs enough train rows with its lags)."""
    return [n for n in names if n != "har_rv" or label_stats.get("har")]


def predictions(name: str, meta: pd.DataFrame, label_stats: dict) -> np.ndarray:
    """The baseline's point forecast for each row (a class for classifiers, a value for regressors)."""
    n = len(meta)
    if name == "base_rate":
        name = "majority"
    fallback = label_stats["majority"] if name in ("majority", "last_move") else label_stats["mean"]
    if name in ("majority", "train_mean"):
        return np.full(n, float(fallback))
    if name == "random_walk":
        return np.zeros(n)
    if name in ("last_move", "persistence"):
        past = meta["past_label"].to_numpy(dtype="float64")
        return np.where(np.isnan(past), float(fallback), past)
    if name == "har_rv":
        forecast = har.predict(meta, label_stats["har"])
        persistence = predictions("persistence", meta, label_stats)
        return np.where(np.isfinite(forecast), forecast, persistence)
    raise ValueError(f"unknown baseline {name!r}")


def probabilities(name: str, meta: pd.DataFrame, label_stats: dict) -> np.ndarray:
    """A classifier baseline's P(class 1) for each row."""
    if name == "base_rate":
        return np.full(len(meta), float(label_stats["mean"]))
    return predictions(name, meta, label_stats)
