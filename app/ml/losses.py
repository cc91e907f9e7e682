"""Per-row losses: what the proper skill scores and the paired tests of DESIGN 5-6 are made of.

Classifiers are scored on P(class 1): Brier (squared error of the probability) and log loss are proper
scores, so a calibrated probability earns skill even when its class answer is always the majority.
Regressors are scored on squared error (RMSE); volatility also on QLIKE (Patton 2011), the loss that ranks
variance forecasts consistently when the realized variance is a noisy proxy.
"""

from __future__ import annotations

import numpy as np

EPS = 1e-15
VOL_FLOOR = 1e-8


def brier(y: np.ndarray, p1: np.ndarray) -> np.ndarray:
    return (np.asarray(p1, dtype="float64") - np.asarray(y, dtype="float64")) ** 2


def log_loss(y: np.ndarray, p1: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p1, dtype="float64"), EPS, 1.0 - EPS)
    y = np.asarray(y, dtype="float64")
    return -(y * np.log(p) + (1.0 - y) * np.log(1.0 - p))


def squared(y: np.ndarray, forecast: np.ndarray) -> np.ndarray:
    return (np.asarray(y, dtype="float64") - np.asarray(forecast, dtype="float64")) ** 2


def absolute(y: np.ndarray, forecast: np.ndarray) -> np.ndarray:
    return np.abs(np.asarray(y, dtype="float64") - np.asarray(forecast, dtype="float64"))


def qlike(realized_vol: np.ndarray, forecast_vol: np.ndarray) -> np.ndarray:
    """QLIKE on variances: RV/F - log(RV/F) - 1 with RV = realized_vol², F = forecast_vol² (0 when equal)."""
    rv = np.maximum(np.asarray(realized_vol, dtype="float64"), VOL_FLOOR) ** 2
    f = np.maximum(np.asarray(forecast_vol, dtype="float64"), VOL_FLOOR) ** 2
    ratio = rv / f
    return ratio - np.log(ratio) - 1.0


def skill_from_totals(model_total: np.ndarray, baseline_total: np.ndarray, root: bool) -> np.ndarray:
    """1 - L/L_b (Brier skill), or 1 - sqrt(L/L_b) (RMSE skill) when `root`; NaN where L_b is 0."""
    m = np.asarray(model_total, dtype="float64")
    b = np.asarray(baseline_total, dtype="float64")
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(b > 0, m / np.where(b > 0, b, 1.0), np.nan)
    return 1.0 - (np.sqrt(ratio) if root else ratio)
