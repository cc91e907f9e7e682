"""Bars (the OHLCV arrays of one frame) and the array computations several features share.

Everything here is causal: the value at row i uses rows <= i only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd
import talib

from app.core.errors import BadInput
from app.data.frames import OHLCV

MACD_FAST, MACD_SLOW, MACD_SIGNAL = 12, 26, 9
DAY_MS = 86_400_000


class Bars:
    """Float64 OHLCV arrays of one frame plus a memo, so shared intermediates (MACD, SMAs) run once.

    `market`: other symbols' candles of the same timeframe (cross-asset features), read only at this
    frame's own times (`market_close`): a time a market symbol has no candle for is NaN there.
    """

    def __init__(self, candles: pd.DataFrame, market: Mapping[str, pd.DataFrame] | None = None) -> None:
        self.index = candles.index
        self.open, self.high, self.low, self.close, self.volume = (
            np.ascontiguousarray(candles[c].to_numpy(dtype="float64")) for c in OHLCV
        )
        self.market: Mapping[str, pd.DataFrame] = market or {}
        self._memo: dict[tuple, np.ndarray | tuple[np.ndarray, ...]] = {}

    def market_close(self, symbol: str) -> np.ndarray:
        """`symbol`'s close at each of this frame's times (NaN where it has no candle)."""

        def calc() -> np.ndarray:
            if symbol not in self.market:
                raise BadInput(
                    f"cross-asset features need the candles of {symbol} at the same times; "
                    f"got market candles of {sorted(self.market) or 'no symbol'}"
                )
            close = self.market[symbol]["close"].astype("float64")
            return np.ascontiguousarray(close.reindex(self.index).to_numpy(dtype="float64"))

        return self.memo(("market_close", symbol), calc)

    @property
    def bar_ms(self) -> int:
        """The frame's bar length: its smallest step between candles (1m for a frame of one candle)."""

        def calc() -> np.ndarray:
            steps = np.diff(self.ms)
            steps = steps[steps > 0]
            return np.array([steps.min() if len(steps) else 60_000], dtype="int64")

        return int(self.memo(("bar_ms",), calc)[0])

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


# --- windows computed one window at a time ---------------------------------------------------------------
# Running sums (TA-Lib's, pandas') carry rounding from every earlier row, and one NaN poisons them for good.
# The features below are computed from each window's own values only (numpy's sliding views, in chunks), so
# a value is bit-for-bit the same however much history was loaded, and a missing candle (a NaN) spoils only
# the windows that hold it.

_CHUNK_CELLS = 1 << 20


def windowed(x: np.ndarray, n: int, fn: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """out[i] = fn(windows)[..] for the window x[i-n+1 .. i] (NaN for the first n-1 rows).

    `fn` maps a (rows, n) block of windows to one value per row.
    """
    out = np.full(len(x), np.nan)
    if len(x) < n:
        return out
    views = np.lib.stride_tricks.sliding_window_view(x, n)
    step = max(1, _CHUNK_CELLS // n)
    for start in range(0, len(views), step):
        block = views[start : start + step]
        out[n - 1 + start : n - 1 + start + len(block)] = fn(block)
    return out


def windowed_pair(x: np.ndarray, y: np.ndarray, n: int,
                  fn: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> np.ndarray:
    """`windowed` over two aligned series at once (covariances, betas)."""
    out = np.full(len(x), np.nan)
    if len(x) < n:
        return out
    vx = np.lib.stride_tricks.sliding_window_view(x, n)
    vy = np.lib.stride_tricks.sliding_window_view(y, n)
    step = max(1, _CHUNK_CELLS // n)
    for start in range(0, len(vx), step):
        bx, by = vx[start : start + step], vy[start : start + step]
        out[n - 1 + start : n - 1 + start + len(bx)] = fn(bx, by)
    return out


def window_std(x: np.ndarray, n: int) -> np.ndarray:
    """Population std of each n-row window, two-pass on the window's own values."""

    def std(block: np.ndarray) -> np.ndarray:
        dev = block - block.mean(axis=1, keepdims=True)
        return np.sqrt((dev * dev).mean(axis=1))

    return windowed(x, n, std)


def window_beta(y: np.ndarray, x: np.ndarray, n: int) -> np.ndarray:
    """OLS slope of y on x over each n-row window (NaN when x is flat in the window)."""

    def beta(by: np.ndarray, bx: np.ndarray) -> np.ndarray:
        dx = bx - bx.mean(axis=1, keepdims=True)
        dy = by - by.mean(axis=1, keepdims=True)
        var = (dx * dx).sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            out = (dx * dy).sum(axis=1) / var
        out[~np.isfinite(out) | (var == 0.0)] = np.nan
        return out

    return windowed_pair(y, x, n, beta)


def window_percentile(x: np.ndarray, n: int) -> np.ndarray:
    """Share of the n values of each window (the current one included) at or below the current value."""

    def pct(block: np.ndarray) -> np.ndarray:
        out = (block <= block[:, -1:]).mean(axis=1)
        out[np.isnan(block).any(axis=1)] = np.nan
        return out

    return windowed(x, n, pct)


def closed_bins(bars: Bars, step_ms: int) -> tuple[np.ndarray, np.ndarray]:
    """(closes of the `step_ms` bins present in the frame, per row the position of its last CLOSED bin).

    Bins are epoch-aligned like `app.features.resample`; a bin's close is its last candle's close. A row
    whose candle closes at time c sees only bins ending at or before c, so a higher-timeframe value is the
    one the market showed when the row's candle closed; position -1 means no closed bin in the frame yet.
    """

    def calc() -> tuple[np.ndarray, np.ndarray]:
        ms, bar = bars.ms, bars.bar_ms
        if step_ms <= bar or step_ms % bar:
            raise BadInput(f"a higher-timeframe feature of {step_ms // 60_000} min needs bars that divide it "
                           f"and are shorter (the frame's bars are {bar // 60_000} min)")
        if not len(ms):
            return np.empty(0), np.empty(0, dtype="int64")
        bins = ms // step_ms
        last = np.flatnonzero(np.r_[bins[1:] != bins[:-1], True])  # each present bin's last row
        closes, labels = bars.close[last], bins[last]
        closed = (ms + bar) // step_ms - 1  # the newest bin that has ended when the row's candle closes
        pos = np.searchsorted(labels, closed, side="right") - 1
        return closes, pos

    return bars.memo(("bins", step_ms), calc)


def htf_series(bars: Bars, step_ms: int, fn: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """`fn` of the closed bins' closes, read back at each row (its last closed bin; NaN before one)."""
    closes, pos = closed_bins(bars, step_ms)
    values = fn(closes) if len(closes) else closes
    out = np.full(len(pos), np.nan)
    ok = pos >= 0
    out[ok] = values[pos[ok]]
    return out
