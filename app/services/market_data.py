"""Stored candles for models asked by symbol (1m stored; higher timeframes resampled).

This is the store-backed `app.ml.backend.Backend`: the seed-style calls of `app.ml` (`train(symbols=...)`,
`predict(symbol=...)`, `backtest(...)`, `TrainingPipeline.save_model`, `load_model`) reach the database and
the artifact store only through it, so `app.ml` itself imports no database code.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pandas as pd

from app.core.errors import BadInput, NotFound
from app.data.candles import load_candles, stored_sources
from app.data.frames import TIMEFRAME_MS, bars_per_day, index_ms, timeframe_ms
from app.features import resample
from app.ml.backend import set_backend

__all__ = ["bars_per_day", "candles_for_features", "data_source_of", "latest_candles", "load_window",
           "market_candles"]


def latest_candles(symbol: str, timeframe: str, bars: int) -> pd.DataFrame:
    """The newest `bars` complete candles of `timeframe` for one symbol."""
    step = timeframe_ms(timeframe) // TIMEFRAME_MS["1m"]
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
    bar_ms = timeframe_ms(timeframe)
    first = int(features.index.min().timestamp() * 1000) - warmup * bar_ms
    last = int(features.index.max().timestamp() * 1000) + bar_ms - TIMEFRAME_MS["1m"]
    candles = load_candles(symbol, "1m", start_ts=first, end_ts=last)
    if candles.empty:
        raise NotFound(f"no 1m candles stored for {symbol!r} in the span of its feature frame")
    return resample(candles, timeframe) if bar_ms > TIMEFRAME_MS["1m"] else candles


def market_candles(symbols: list[str], timeframe: str, start_ms: int, end_ms: int) -> dict[str, pd.DataFrame]:
    """The stored candles of `symbols` whose bars open in [start_ms, end_ms] (cross-asset models' market).

    A symbol without any is left out: the model then names it (MarketCandlesMissing, 503).
    """
    bar_ms = timeframe_ms(timeframe)
    out = {}
    for symbol in symbols:
        candles = load_candles(symbol, "1m", start_ts=start_ms, end_ts=end_ms + bar_ms - TIMEFRAME_MS["1m"])
        if bar_ms > TIMEFRAME_MS["1m"]:
            candles = resample(candles, timeframe)
        if not candles.empty:
            out[symbol] = candles
    return out


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


class StoredBackend:
    """`app.ml.backend.Backend` over the candle table and the model store."""

    latest_candles = staticmethod(latest_candles)
    load_window = staticmethod(load_window)
    candles_for_features = staticmethod(candles_for_features)
    market_candles = staticmethod(market_candles)
    data_source_of = staticmethod(data_source_of)

    @staticmethod
    def save_model(model: Any, name: str) -> str:
        from app.services.models import save_model

        return save_model(model, name=name).name

    @staticmethod
    def load_model(name: str) -> Any:
        from app.services.models import load_model

        return load_model(name)

    @staticmethod
    def save_ensemble(name: str, config: dict[str, Any]) -> str:
        from app.services.ensembles import save_config

        return save_config(name, config).name

    @staticmethod
    def backtest_ensemble(name: str, symbols: list[str] | None, days_back: float) -> dict:
        from app.services.ensembles import backtest_results

        return backtest_results(name, symbols=symbols, days_back=days_back)


set_backend(StoredBackend())
