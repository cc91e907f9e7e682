"""Confidence calibrators fitted on the calibration slice: Platt scaling and empirical band coverage.

All state is plain floats, so it travels in config.json and round-trips exactly.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize

from app.core.errors import BadInput

QUANTILES = 201


def platt_fit(score: np.ndarray, y: np.ndarray) -> dict:
    """P(class 1 | score) = 1 / (1 + exp(-(a * score + b))), by maximum likelihood on held-apart rows."""
    y = np.asarray(y, dtype="float64")
    if y.min() == y.max():
        raise BadInput(
            "the calibration slice holds a single class; train on a longer window so both classes occur"
        )
    s = np.asarray(score, dtype="float64")
    sign = 2.0 * y - 1.0

    def loss(params: np.ndarray) -> tuple[float, np.ndarray]:
        margin = sign * (params[0] * s + params[1])
        value = np.logaddexp(0.0, -margin)
        weight = -sign / (1.0 + np.exp(np.clip(margin, -500, 500)))
        return float(value.mean()), np.array([np.mean(weight * s), np.mean(weight)])

    result = minimize(loss, x0=np.array([1.0, 0.0]), jac=True, method="L-BFGS-B")
    return {"a": float(result.x[0]), "b": float(result.x[1])}


def platt_apply(score: np.ndarray, params: dict) -> np.ndarray:
    z = params["a"] * np.asarray(score, dtype="float64") + params["b"]
    return 1.0 / (1.0 + np.exp(-np.clip(z, -500, 500)))


def quantiles(values: np.ndarray, n: int = QUANTILES) -> list[float]:
    """n evenly spaced quantiles: a compact empirical distribution."""
    return [float(v) for v in np.quantile(np.asarray(values, dtype="float64"), np.linspace(0.0, 1.0, n))]


def ecdf(x: np.ndarray, qs: list[float]) -> np.ndarray:
    """P(value <= x) under the distribution summarised by `quantiles`."""
    q = np.maximum.accumulate(np.asarray(qs, dtype="float64"))
    return np.interp(np.asarray(x, dtype="float64"), q, np.linspace(0.0, 1.0, len(q)), left=0.0, right=1.0)


def binned_rates(key: np.ndarray, hit: np.ndarray, bins: int = 5) -> dict:
    """Frequency of `hit` within quantile bins of `key` (Laplace-smoothed), for a per-row confidence."""
    edges = np.quantile(key, np.linspace(0.0, 1.0, bins + 1))[1:-1]
    which = np.searchsorted(edges, key, side="right")
    counts = np.bincount(which, minlength=bins)
    hits = np.bincount(which, weights=hit.astype("float64"), minlength=bins)
    return {"edges": [float(e) for e in edges], "rates": [float(r) for r in (hits + 1) / (counts + 2)],
            "counts": [int(c) for c in counts]}


def binned_lookup(key: np.ndarray, table: dict) -> np.ndarray:
    which = np.searchsorted(np.asarray(table["edges"]), np.asarray(key, dtype="float64"), side="right")
    return np.asarray(table["rates"])[which]
