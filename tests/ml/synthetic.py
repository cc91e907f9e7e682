"""Synthetic candles for the ML tests: a fat-tailed i.i.d. random walk, and one with a planted signal.

On the random walk nothing about the future is knowable from the past, so any model that beats chance
there leaks; on the AR(1) series (phi = -0.3) the last return predicts the next one, so a model that
cannot beat the baselines there is blind.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

SYMBOLS = {"BTC-USDT": 30_000.0, "ETH-USDT": 2_000.0, "XRP-USDT": 0.5}
START_MS = 1_704_067_200_000  # 2024-01-01 00:00 UTC
BAR_VOL = 0.001


def make_candles(
    n: int, seed: int, price: float = 100.0, phi: float = 0.0, tf_ms: int = 60_000
) -> pd.DataFrame:
    """n candles whose 1-bar log returns are r_t = phi * r_{t-1} + e_t, e_t Student-t(4) scaled to BAR_VOL.

    phi = 0 is a pure random walk (i.i.d. returns, i.i.d. volume and wicks).
    """
    rng = np.random.default_rng(seed)
    eps = rng.standard_t(4, n) / np.sqrt(2.0) * BAR_VOL
    r = np.empty(n)
    prev = 0.0
    for i in range(n):
        prev = phi * prev + eps[i]
        r[i] = prev
    close = price * np.exp(np.cumsum(r))
    open_ = np.r_[price, close[:-1]]
    wick = np.abs(rng.normal(0.0, 0.5 * BAR_VOL, (2, n)))
    high = np.maximum(open_, close) * np.exp(wick[0])
    low = np.minimum(open_, close) * np.exp(-wick[1])
    volume = rng.lognormal(3.0, 0.5, n)
    index = pd.DatetimeIndex(pd.to_datetime(START_MS + tf_ms * np.arange(n), unit="ms", utc=True), name="ts")
    return pd.DataFrame({"open": open_, "high": high, "low": low, "close": close, "volume": volume},
                        index=index.as_unit("ms"))


def market(days: float, seed: int, phi: float = 0.0) -> dict[str, pd.DataFrame]:
    n = int(days * 1440)
    return {s: make_candles(n, seed + i, p, phi) for i, (s, p) in enumerate(SYMBOLS.items())}


# Small estimators where a test is not about the defaults: the same template, a fraction of the time.
SMALL = {
    "direction": {"n_estimators": 30},
    "risk": {"n_estimators": 20},
    "price": {"epochs": 5},
    "momentum": {"n_components": 100},
    "volatility": {"max_iter": 50},
}
