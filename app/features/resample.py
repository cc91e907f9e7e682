"""1m candles -> 5m/15m/1h/4h candles, never including a bin that has not closed yet."""

from __future__ import annotations

import numpy as np
import pandas as pd

from app.core.errors import BadInput
from app.data.frames import OHLCV, timeframe_ms


def resample(candles: pd.DataFrame, timeframe: str, source_timeframe: str = "1m") -> pd.DataFrame:
    """Aggregate candles into `timeframe` bins: left-closed, labelled by open time (UTC epoch-aligned).

    OHLC are first/max/min/last and volume is summed. The last bin is dropped when it ends after the last
    source candle closes, so a resampled bar never mixes in candles from its future; bins with missing
    candles inside are kept (what an exchange would report), bins with none are absent.
    """
    step, src = timeframe_ms(timeframe), timeframe_ms(source_timeframe)
    if step % src:
        raise BadInput(f"cannot build {timeframe} candles from {source_timeframe} candles")
    if step == src or candles.empty:
        return candles[OHLCV].copy()
    ms = candles.index.as_unit("ms").asi8
    bins = ms // step
    starts = np.flatnonzero(np.r_[True, bins[1:] != bins[:-1]])
    ends = np.r_[starts[1:], len(ms)] - 1
    values = {c: candles[c].to_numpy(dtype="float64") for c in OHLCV}
    out = {
        "open": values["open"][starts],
        "high": np.maximum.reduceat(values["high"], starts),
        "low": np.minimum.reduceat(values["low"], starts),
        "close": values["close"][ends],
        "volume": np.add.reduceat(values["volume"], starts),
    }
    labels = bins[starts] * step
    keep = labels + step <= ms[-1] + src
    index = pd.DatetimeIndex(pd.to_datetime(labels[keep], unit="ms", utc=True), name="ts").as_unit("ms")
    return pd.DataFrame({c: v[keep] for c, v in out.items()}, index=index)
