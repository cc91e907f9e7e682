"""FeatureManager: features of stored candles (lookback + warm-up loaded, resampled, computed, trimmed)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd
from sqlalchemy.engine import Engine

from app.core.errors import BadInput, NotFound
from app.data.candles import last_candle_ts, load_candles
from app.data.frames import TIMEFRAME_MS
from app.features.compute import (
    check_timeframe,
    compute_features,
    feature_list_names,
    market_symbols,
    required_warmup,
)
from app.features.resample import resample


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
        symbols: Iterable[str] | None = None,
    ) -> pd.DataFrame:
        """The last `lookback_bars` rows of features up to `end_ts` (ms, inclusive; default: newest).

        Loads warm-up bars ahead of the window so the rows returned match a full-history computation;
        higher timeframes are resampled from stored 1m candles, and an unfinished last bar is left out.
        Leading rows that are still NaN (history shorter than the warm-up) are dropped. The frame's
        `attrs` say which candles it holds (`symbol`, `timeframe`). Cross-asset features read the stored
        candles of the other symbols over the same span: `btc_*` BTC-USDT, `xs_*` the cross-section of
        `symbols` (default: `symbol` and BTC-USDT), as a model trained on those symbols reads them.
        """
        check_timeframe(timeframe)
        names = feature_list_names(feature_list)
        if lookback_bars < 1:
            raise BadInput(f"lookback_bars must be at least 1, got {lookback_bars}")
        candles = self._load(symbol, timeframe, lookback_bars + required_warmup(names, timeframe), end_ts)
        market = self._market(names, symbol, symbols, timeframe, candles)
        features = compute_features(candles, names, market).iloc[-lookback_bars:]
        complete = features.notna().all(axis=1).to_numpy()
        first = int(np.argmax(complete)) if complete.any() else len(features)
        features = features.iloc[first:].copy()
        # Which candles the rows belong to: lets a model answer `predict(features.iloc[-1:])` for that
        # candle with its own features, whichever columns were asked for here.
        features.attrs.update(symbol=symbol, timeframe=timeframe)
        return features

    def _market(self, names: list[str], symbol: str, symbols: Iterable[str] | None, timeframe: str,
                candles: pd.DataFrame) -> dict[str, pd.DataFrame] | None:
        from app.features.registry import REFERENCE_SYMBOL

        call = {symbol, REFERENCE_SYMBOL} if symbols is None else {symbol, *symbols}
        needed = market_symbols(names, call)
        if not needed:
            return None
        start, end = (int(t) for t in candles.index[[0, -1]].as_unit("ms").asi8)
        step = TIMEFRAME_MS[timeframe]
        out = {}
        for other in needed:
            frame = candles if other == symbol else load_candles(
                other, "1m", start_ts=start, end_ts=end + step - TIMEFRAME_MS["1m"], engine=self.engine)
            out[other] = frame if other == symbol or timeframe == "1m" else resample(frame, timeframe)
        return out

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
