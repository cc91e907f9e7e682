"""Bars (the OHLCV arrays of one frame) and the array computations several features share.

Everything here is causal: the value at row i uses rows <= i only.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import talib

from app.data.frames import OHLCV

MACD_FAST, MACD_SLOW, MACD_SIGNAL = 12, 26, 9
DAY_MS = 86_400_000


class Bars:
    """Float64 OHLCV arrays of one frame plus a memo, so shared intermediates (MACD, SMAs) run once."""

    def __init__(self, candles: pd.DataFrame) -> None:
        self.index = candles.index
        self.open, self.high, self.low, self.close, self.volume = (
            np.ascontiguousarray(candles[c].to_numpy(dtype="float64")) for c in OHLCV
        )
        self._memo: dict[tuple, np.ndarray | tuple[np.ndarray, ...]] = {}

    def memo(self, key: tuple, fn: Callable[[], np.ndarray | tuple[np.ndarray, ...]]):
        if key not in self._memo:
            self._memo[key] = fn()
        return self._memo[key]

    @property
    def ms(self) -> np.ndarray:
        return self.memo(("ms",), lambda: self.index.as_unit("ms").asi8)


def ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        out = num / den
    out[~np.isfinite(out)] = np.nan
    return out


def shift_ratio(x: np.ndarray, n: int) -> np.ndarray:
    out = np.full_like(x, np.nan)
    if len(x) > n:
        out[n:] = ratio(x[n:], x[:-n])
    return out


def close_stats(bars: Bars, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(SMA, population std) of close over each n-bar window; the std is summed around the mean (two-pass).

    TA-Lib's STDDEV keeps running sums of x and x^2, which loses digits when the price is large against
    its spread and turns a flat window into noise; here the std is exact to rounding for every window on
    its own, and exactly 0 when the window is flat.
    """

    def calc() -> tuple[np.ndarray, np.ndarray]:
        x, mean = bars.close, sma(bars, "close", n)
        std = np.full_like(x, np.nan)
        if len(x) < n:
            return mean, std
        m = mean[n - 1 :]
        acc, dev = np.zeros_like(m), np.empty_like(m)
        for lag in range(n):
            np.subtract(x[n - 1 - lag : len(x) - lag], m, out=dev)
            np.multiply(dev, dev, out=dev)
            acc += dev
        acc /= n
        np.sqrt(acc, out=std[n - 1 :])
        std[talib.MAX(x, n) == talib.MIN(x, n)] = 0.0
        return mean, std

    return bars.memo(("stats", "close", n), calc)


def sma(bars: Bars, field: str, n: int) -> np.ndarray:
    return bars.memo(("sma", field, n), lambda: talib.SMA(getattr(bars, field), n))


def macd(bars: Bars) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return bars.memo(
        ("macd",), lambda: talib.MACD(bars.close, MACD_FAST, MACD_SLOW, MACD_SIGNAL)
    )


def log_returns(bars: Bars, n: int) -> np.ndarray:
    def calc() -> np.ndarray:
        out = np.full_like(bars.close, np.nan)
        if len(bars.close) > n:
            with np.errstate(divide="ignore", invalid="ignore"):
                out[n:] = np.log(bars.close[n:] / bars.close[:-n])
        out[~np.isfinite(out)] = np.nan
        return out

    return bars.memo(("logret", n), calc)


def vwap(bars: Bars) -> np.ndarray:
    """VWAP anchored at 00:00 UTC each day on the typical price (high + low + close) / 3.

    The anchor is the calendar day, not the start of the loaded window, so the value for a candle is the
    same however much history was loaded, as long as the window reaches back to that day's first candle.
    A day whose volume so far is zero uses the typical price of the current candle.
    """

    def calc() -> np.ndarray:
        typical = (bars.high + bars.low + bars.close) / 3.0
        day = bars.ms // DAY_MS
        starts = np.flatnonzero(np.r_[True, day[1:] != day[:-1]]) if len(day) else np.array([], int)
        pv = np.cumsum(typical * bars.volume)
        vol = np.cumsum(bars.volume)
        lengths = np.diff(np.r_[starts, len(day)])
        # Subtract the running totals at each day's start so each day sums from its own first candle.
        base_pv = np.repeat(np.r_[0.0, pv][starts], lengths)
        base_vol = np.repeat(np.r_[0.0, vol][starts], lengths)
        day_pv, day_vol = pv - base_pv, vol - base_vol
        with np.errstate(divide="ignore", invalid="ignore"):
            out = np.where(day_vol > 0, day_pv / day_vol, typical)
        return out

    return bars.memo(("vwap",), calc)


_MINUTE_ANGLES = np.arange(1440) * (2 * np.pi / 1440)
_MINUTE_SIN, _MINUTE_COS = np.sin(_MINUTE_ANGLES), np.cos(_MINUTE_ANGLES)


def time_of_day(bars: Bars, fn: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """sin/cos of the time of day; minute-aligned candles (all of them in practice) use a 1440-entry table."""
    ms_of_day = bars.ms % DAY_MS
    if not (ms_of_day % 60_000).any():
        table = _MINUTE_SIN if fn is np.sin else _MINUTE_COS
        return table[ms_of_day // 60_000]
    return fn(ms_of_day * (2 * np.pi / DAY_MS))
