"""Candles for training and serving, read from the store (1m stored; higher timeframes resampled)."""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from app.core.errors import BadInput, NotFound
from app.data.candles import TIMEFRAME_MS, index_ms, load_candles, stored_sources
from app.features import resample

MINUTES_PER_DAY = 1_440


def bars_per_day(timeframe: str) -> int:
    return max(1, MINUTES_PER_DAY * 60_000 // _timeframe_ms(timeframe))


def _timeframe_ms(timeframe: str) -> int:
    if timeframe not in TIMEFRAME_MS:
        raise BadInput(f"unknown timeframe {timeframe!r}; known: {', '.join(TIMEFRAME_MS)}")
    return TIMEFRAME_MS[timeframe]


def latest_candles(symbol: str, timeframe: str, bars: int) -> pd.DataFrame:
    """The newest `bars` complete candles of `timeframe` for one symbol."""
    step = _timeframe_ms(timeframe) // TIMEFRAME_MS["1m"]
    candles = load_candles(symbol, "1m", limit=(bars + 1) * step)
    if candles.empty:
        raise NotFound(f"no 1m candles stored for {symbol!r}; run `mlpipe ingest --symbols {symbol}` first")
    if step > 1:
        candles = resample(candles, timeframe)
    return candles.iloc[-bars:]


def load_window(symbols: Iterable[str], timeframe: str, bars: int) -> dict[str, pd.DataFrame]:
    """The newest `bars` candles of every symbol, keyed by symbol (what `train_on` and backtests take)."""
    symbols = list(dict.fromkeys(symbols))
    if not symbols:
        raise BadInput("no symbols given; pass e.g. symbols=['BTC-USDT']")
    return {symbol: latest_candles(symbol, timeframe, bars) for symbol in symbols}


def candles_for_features(symbol: str, features: pd.DataFrame, timeframe: str, warmup: int) -> pd.DataFrame:
    """The stored candles behind a FeatureManager frame: its time span plus `warmup` bars before it.

    Lets the seed's pipeline form pass feature frames (`fm.get_features(...)`) as training data: labels
    and features are then recomputed from the candles, the same way as everywhere else.
    """
    if not isinstance(features.index, pd.DatetimeIndex) or features.empty:
        raise BadInput(f"data for {symbol!r} must be candles or a non-empty frame indexed by candle time")
    bar_ms = _timeframe_ms(timeframe)
    first = int(features.index.min().timestamp() * 1000) - warmup * bar_ms
    last = int(features.index.max().timestamp() * 1000) + bar_ms - TIMEFRAME_MS["1m"]
    candles = load_candles(symbol, "1m", start_ts=first, end_ts=last)
    if candles.empty:
        raise NotFound(f"no 1m candles stored for {symbol!r} in the span of its feature frame")
    return resample(candles, timeframe) if bar_ms > TIMEFRAME_MS["1m"] else candles


def data_source_of(candles_by_symbol: dict[str, pd.DataFrame]) -> str:
    """What a model trained on these candles records as its `data_source`: the stored candles' source.

    `csv+simulated` when the window mixes sources; `unknown` for candles that are not in the store.
    """
    found: set[str] = set()
    for symbol, candles in candles_by_symbol.items():
        if len(candles):
            stamps = index_ms(candles.index)
            found |= stored_sources(symbol, int(stamps[0]), int(stamps[-1]))
    return "+".join(sorted(found)) or "unknown"
