"""Features for a symbol: load enough candles (lookback + warm-up), resample, compute, trim.

`compute_features` is the pure part shared by training and serving, so both see the same numbers.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd
from sqlalchemy.engine import Engine

from app.core.errors import BadInput, NotFound
from app.data.candles import OHLCV, TIMEFRAME_MS, last_candle_ts, load_candles
from app.features.registry import Bars, get_feature
from app.features.resample import resample

DEFAULT_FEATURES: tuple[str, ...] = (
    "returns", "returns_5", "log_returns", "rsi_14", "natr_14", "adx_14", "macd_histogram_pct",
    "bb_width_20", "realized_vol_30", "volume_ratio_20", "vwap_dist", "close_zscore_20",
    "range_pct", "hour_sin", "hour_cos",
)


def _names(feature_list: Iterable[str] | str | None) -> list[str]:
    if feature_list is None:
        return list(DEFAULT_FEATURES)
    if isinstance(feature_list, str):
        feature_list = [feature_list]
    names = list(dict.fromkeys(feature_list))
    if not names:
        raise BadInput("feature_list is empty; name at least one feature, e.g. ['returns', 'rsi_14']")
    for name in names:
        get_feature(name)
    return names


def _check_timeframe(timeframe: str) -> None:
    if timeframe not in TIMEFRAME_MS:
        raise BadInput(f"unknown timeframe {timeframe!r}; known: {', '.join(TIMEFRAME_MS)}")


def required_warmup(feature_list: Iterable[str] | str | None = None, timeframe: str = "1m") -> int:
    """Rows to load before the first row you want, so every value equals its full-history value.

    Training and serving both load `lookback + required_warmup(...)` rows, which is what makes a short
    serving window reproduce what the model saw in training.
    """
    _check_timeframe(timeframe)
    return max(get_feature(name).warmup_for(timeframe) for name in _names(feature_list))


def compute_features(candles: pd.DataFrame, feature_list: Iterable[str] | str | None = None) -> pd.DataFrame:
    """One float column per requested feature on the candles' own index.

    Pure and causal: the value at time t uses only rows at or before t. The first
    `required_warmup(feature_list)` rows may be NaN or still depend on where the frame starts.
    """
    names = _names(feature_list)
    missing = [c for c in OHLCV if c not in candles.columns]
    if missing:
        raise BadInput(f"candles lack columns {missing}; expected {OHLCV} indexed by UTC time")
    if not isinstance(candles.index, pd.DatetimeIndex):
        raise BadInput("candles must be indexed by a DatetimeIndex of candle open times (UTC)")
    if not candles.index.is_monotonic_increasing or not candles.index.is_unique:
        raise BadInput("candles must be sorted by time without duplicate timestamps")
    bars = Bars(candles)
    values = np.empty((len(candles), len(names)), order="F")  # column-major: each column written once
    for j, name in enumerate(names):
        values[:, j] = get_feature(name).compute(bars)
    return pd.DataFrame(values, index=candles.index, columns=names, copy=False)


class FeatureManager:
    """Features of stored candles for one symbol and timeframe (DESIGN 3)."""

    def __init__(self, engine: Engine | None = None) -> None:
        self.engine = engine

    def get_features(
        self,
        symbol: str,
        timeframe: str = "1m",
        feature_list: Iterable[str] | str | None = None,
        lookback_bars: int = 500,
        end_ts: int | None = None,
    ) -> pd.DataFrame:
        """The last `lookback_bars` rows of features up to `end_ts` (ms, inclusive; default: newest).

        Loads warm-up bars ahead of the window so the rows returned match a full-history computation;
        higher timeframes are resampled from stored 1m candles, and an unfinished last bar is left out.
        Leading rows that are still NaN (history shorter than the warm-up) are dropped.
        """
        _check_timeframe(timeframe)
        names = _names(feature_list)
        if lookback_bars < 1:
            raise BadInput(f"lookback_bars must be at least 1, got {lookback_bars}")
        candles = self._load(symbol, timeframe, lookback_bars + required_warmup(names, timeframe), end_ts)
        features = compute_features(candles, names).iloc[-lookback_bars:]
        complete = features.notna().all(axis=1).to_numpy()
        first = int(np.argmax(complete)) if complete.any() else len(features)
        return features.iloc[first:]

    def _load(self, symbol: str, timeframe: str, bars: int, end_ts: int | None) -> pd.DataFrame:
        """The newest `bars` candles of `timeframe` up to `end_ts`, resampled from 1m when needed."""
        if timeframe == "1m":
            candles = load_candles(symbol, "1m", end_ts=end_ts, limit=bars, engine=self.engine)
        else:
            end = end_ts if end_ts is not None else last_candle_ts(symbol, engine=self.engine)
            step = TIMEFRAME_MS[timeframe]
            # Start on a bin boundary so the first bin is whole; one spare bin for the unfinished newest.
            start = None if end is None else (end // step - bars) * step
            candles = load_candles(symbol, "1m", start_ts=start, end_ts=end, engine=self.engine)
        if candles.empty:
            where = "" if end_ts is None else f" at or before ts={end_ts}"
            raise NotFound(
                f"no 1m candles stored for {symbol!r}{where}; run `mlpipe ingest --symbols {symbol}` first"
            )
        if timeframe == "1m":
            return candles
        resampled = resample(candles, timeframe)
        if resampled.empty:
            raise NotFound(
                f"not one complete {timeframe} candle for {symbol!r} yet; ingest more history "
                f"(`mlpipe ingest --symbols {symbol}`)"
            )
        return resampled
