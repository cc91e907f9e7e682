"""HAR-RV (Corsi 2009) with a time-of-day profile: the volatility kind's strongest naive baseline.

log RV[t, t+h] = b0 + b1 log RV_1h(t) + b2 log RV_4h(t) + b3 log RV_24h(t) + profile(hour) + e

RV_w(t) is the realized volatility of the w bars up to and including t (known at t), rescaled to the
forecast's h bars by sqrt(h / w) (from at least half of the w bars at the start of a history).
`profile` is the mean residual of the UTC hour in the middle of the
forecast window (intraday seasonality of volatility), shrunk toward 0 when an hour has few rows. The
forecast is exp(fit) times the smearing factor mean(exp(e)) (Duan 1983), so it estimates RV itself rather
than its geometric mean. Everything is fitted by least squares on TRAIN rows only and kept as plain floats.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

HOUR_MS = 3_600_000
LAG_HOURS = {"har_1h": 1, "har_4h": 4, "har_24h": 24}
COLUMNS = tuple(LAG_HOURS)
FLOOR = 1e-8
MIN_ROWS = 50
PROFILE_SHRINK_ROWS = 50  # an hour with n rows keeps n / (n + 50) of its mean residual


def lag_inputs(candles: pd.DataFrame, horizon: int, bar_ms: int) -> dict[str, pd.Series]:
    """Past realized volatility over 1 h, 4 h and 24 h ending at each bar, rescaled to h bars."""
    squared = np.log(candles["close"].astype("float64")).diff() ** 2
    out = {}
    for name, hours in LAG_HOURS.items():
        window = max(1, hours * HOUR_MS // bar_ms)
        rolling = squared.rolling(window, min_periods=max(1, window // 2))
        out[name] = np.sqrt(rolling.sum() * (horizon / rolling.count()))
    return out


def _design(meta: pd.DataFrame) -> np.ndarray:
    lags = np.log(np.maximum(meta[list(COLUMNS)].to_numpy(dtype="float64"), FLOOR))
    return np.column_stack([np.ones(len(meta)), lags])


def _hours(meta: pd.DataFrame, horizon: int, bar_ms: int) -> np.ndarray:
    middle = meta["ts_ms"].to_numpy(dtype="int64") + (horizon * bar_ms) // 2
    return (middle // HOUR_MS) % 24


def fit(y: np.ndarray, meta: pd.DataFrame, horizon: int, bar_ms: int) -> dict | None:
    """Coefficients, hourly profile and smearing factor from train rows; None when too few rows."""
    if any(c not in meta.columns for c in COLUMNS):
        return None
    design = _design(meta)
    target = np.log(np.maximum(np.asarray(y, dtype="float64"), FLOOR))
    ok = np.isfinite(design).all(axis=1) & np.isfinite(target)
    if ok.sum() < MIN_ROWS:
        return None
    coef, *_ = np.linalg.lstsq(design[ok], target[ok], rcond=None)
    resid = target[ok] - design[ok] @ coef
    hours = _hours(meta, horizon, bar_ms)[ok]
    counts = np.bincount(hours, minlength=24)
    sums = np.bincount(hours, weights=resid, minlength=24)
    profile = sums / (counts + PROFILE_SHRINK_ROWS)
    smearing = float(np.mean(np.exp(resid - profile[hours])))
    return {"coef": coef.tolist(), "profile": profile.tolist(), "smearing": smearing,
            "horizon": int(horizon), "bar_ms": int(bar_ms), "rows": int(ok.sum())}


def predict(meta: pd.DataFrame, stats: dict) -> np.ndarray:
    """HAR-RV forecasts of RV over each row's next h bars; NaN where a lag is not available."""
    design = _design(meta)
    hours = _hours(meta, int(stats["horizon"]), int(stats["bar_ms"]))
    log_rv = design @ np.asarray(stats["coef"]) + np.asarray(stats["profile"])[hours]
    return np.exp(log_rv) * float(stats["smearing"])
