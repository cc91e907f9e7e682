"""Labels of DESIGN section 4: each row's label uses close[t] and only the bars t+1..t+h after it.

The last `h` rows of a series have no complete future, so their label is NaN (never filled): the dataset
drops them rather than inventing an outcome.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def _forward(series: pd.Series, h: int, how: str) -> pd.Series:
    """`how` ('max', 'min', 'sum') of series[t+1..t+h] at each t; NaN where the window is incomplete."""
    backwards = getattr(series.iloc[::-1].rolling(h, min_periods=h), how)()  # series[t..t+h-1]
    return backwards.iloc[::-1].shift(-1)


def _check(h: int) -> None:
    if h < 1:
        raise ValueError(f"horizon must be at least 1 bar, got {h}")


def direction(candles: pd.DataFrame, h: int) -> pd.Series:
    """1.0 (UP) if close[t+h] > close[t], else 0.0 (DOWN); a flat close counts as DOWN."""
    _check(h)
    close = candles["close"]
    future = close.shift(-h)
    return (future > close).astype("float64").where(future.notna())


def risk(candles: pd.DataFrame, h: int) -> pd.Series:
    """Largest excursion from close[t], either way, over the next h bars, relative to close[t].

    max over bars t+1..t+h of max(|high - close_t|, |low - close_t|) / close_t, which equals
    max(|max high - close_t|, |close_t - min low|) / close_t.
    """
    _check(h)
    close = candles["close"]
    up = (_forward(candles["high"], h, "max") - close).abs()
    down = (close - _forward(candles["low"], h, "min")).abs()
    return np.maximum(up, down) / close


def log_return(candles: pd.DataFrame, h: int) -> pd.Series:
    """log(close[t+h] / close[t]): the price kind uses h = one hour of bars."""
    _check(h)
    close = candles["close"]
    return np.log(close.shift(-h) / close)


def momentum(candles: pd.DataFrame, h: int, n: int) -> pd.Series:
    """1.0 (accelerating) if m[t+h] moved further in m[t]'s direction, else 0.0 (decelerating).

    m = close[t] / close[t-n] - 1. With n <= h, m[t+h] is built only from bars after t, so on a random
    walk no past information beats the majority class: a classifier above it has found real structure
    (or a leak). A zero m[t] has no direction and counts as decelerating.
    """
    _check(h)
    if n < 1:
        raise ValueError(f"momentum window must be at least 1 bar, got {n}")
    close = candles["close"]
    m = close / close.shift(n) - 1.0
    future = m.shift(-h)
    label = (np.sign(m) * (future - m) > 0).astype("float64")
    return label.where(future.notna() & m.notna())


def realized_volatility(candles: pd.DataFrame, h: int) -> pd.Series:
    """sqrt(sum of squared 1-bar log returns over bars t+1..t+h): the volatility of the h-bar return.

    Not annualised and not per bar: on 1m candles with h = 60 it is the one-hour volatility.
    """
    _check(h)
    r = np.log(candles["close"]).diff()
    return np.sqrt(_forward(r * r, h, "sum"))


def past_label(label: pd.Series, h: int) -> pd.Series:
    """The label of row t-h, the newest whose whole window lies at or before t (a persistence baseline)."""
    return label.shift(h)
