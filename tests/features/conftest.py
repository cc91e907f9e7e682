"""Candle frames for the feature tests: a fat-tailed random walk with a flat stretch and quiet bars."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

MakeCandles = Callable[..., pd.DataFrame]


def random_candles(
    n: int, seed: int = 0, start: str = "2024-01-01 20:00", price: float = 30_000.0, freq: str = "1min"
) -> pd.DataFrame:
    """OHLCV indexed by UTC open time; includes a 30-bar flat stretch and some zero-volume candles."""
    rng = np.random.default_rng(seed)
    vol = 1e-3 * np.exp(np.cumsum(rng.normal(0, 0.05, n)).clip(-1.5, 1.5))  # slowly drifting volatility
    steps = rng.standard_t(3, n) * vol
    flat = slice(n // 3, n // 3 + 30) if n > 120 else slice(0, 0)
    steps[flat] = 0.0
    close = price * np.exp(np.cumsum(steps))
    open_ = np.r_[close[0], close[:-1]]
    wick = np.abs(rng.normal(0, 1, (2, n))) * vol
    wick[:, flat] = 0.0
    high = np.maximum(open_, close) * (1 + wick[0])
    low = np.minimum(open_, close) * (1 - wick[1])
    volume = rng.lognormal(0, 1, n) * (1 + 200 * np.abs(steps))
    volume[rng.random(n) < 0.02] = 0.0
    index = pd.date_range(start, periods=n, freq=freq, tz="UTC", name="ts").as_unit("ms")
    columns = {"open": open_, "high": high, "low": low, "close": close, "volume": volume}
    return pd.DataFrame(columns, index=index)


@pytest.fixture()
def make_candles() -> MakeCandles:
    return random_candles
