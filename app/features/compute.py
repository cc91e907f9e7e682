"""Features from candles, pure and causal: what training and serving share, so both see the same numbers."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

from app.core.errors import BadInput
from app.data.frames import OHLCV, timeframe_ms
from app.features.registry import REFERENCE_SYMBOL, Bars, get_feature

DEFAULT_FEATURES: tuple[str, ...] = (
    "returns", "returns_5", "log_returns", "rsi_14", "natr_14", "adx_14", "macd_histogram_pct",
    "bb_width_20", "realized_vol_30", "volume_ratio_20", "vwap_dist", "close_zscore_20",
    "range_pct", "hour_sin", "hour_cos",
)


def feature_list_names(feature_list: Iterable[str] | str | None) -> list[str]:
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


def check_timeframe(timeframe: str) -> None:
    timeframe_ms(timeframe)


def required_warmup(feature_list: Iterable[str] | str | None = None, timeframe: str = "1m") -> int:
    """Rows to load before the first row you want, so every value equals its full-history value.

    Training and serving both load `lookback + required_warmup(...)` rows, which is what makes a short
    serving window reproduce what the model saw in training.
    """
    check_timeframe(timeframe)
    return max(get_feature(name).warmup_for(timeframe) for name in feature_list_names(feature_list))


def market_symbols(feature_list: Iterable[str] | str | None, symbols: Iterable[str]) -> list[str]:
    """The symbols whose candles cross-asset features read beside each symbol's own (none for the others).

    `btc_*` features read REFERENCE_SYMBOL, which must then be among `symbols` (the model's call);
    `xs_*` features read every symbol of the call (the cross-section they average). A model records this
    list when it trains, and serving loads exactly these symbols' candles at the same times.
    """
    symbols = sorted(set(symbols))
    kinds = {get_feature(name).market for name in feature_list_names(feature_list)} - {None}
    needed: set[str] = set()
    if "reference" in kinds:
        if REFERENCE_SYMBOL not in symbols:
            raise BadInput(f"features reading {REFERENCE_SYMBOL} (btc_*) need it among the symbols trained "
                           f"on; got {symbols}")
        needed.add(REFERENCE_SYMBOL)
    if "cross_section" in kinds:
        needed.update(symbols)
    return sorted(needed)


def compute_features(
    candles: pd.DataFrame,
    feature_list: Iterable[str] | str | None = None,
    market: Mapping[str, pd.DataFrame] | None = None,
) -> pd.DataFrame:
    """One float column per requested feature on the candles' own index.

    Pure and causal: the value at time t uses only rows at or before t. The first
    `required_warmup(feature_list)` rows may be NaN or still depend on where the frame starts.
    `market`: the candles (same timeframe) of the symbols cross-asset features read (`market_symbols`),
    used only at the candles' own times; a time one of them lacks gives NaN where it is needed.
    """
    names = feature_list_names(feature_list)
    missing = [c for c in OHLCV if c not in candles.columns]
    if missing:
        raise BadInput(f"candles lack columns {missing}; expected {OHLCV} indexed by UTC time")
    if not isinstance(candles.index, pd.DatetimeIndex):
        raise BadInput("candles must be indexed by a DatetimeIndex of candle open times (UTC)")
    if not candles.index.is_monotonic_increasing or not candles.index.is_unique:
        raise BadInput("candles must be sorted by time without duplicate timestamps")
    bars = Bars(candles, market)
    values = np.empty((len(candles), len(names)), order="F")  # column-major: each column written once
    for j, name in enumerate(names):
        values[:, j] = get_feature(name).compute(bars)
    return pd.DataFrame(values, index=candles.index, columns=names, copy=False)
