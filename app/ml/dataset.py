"""(X, y, meta) for one model from candles of several symbols, pooled on one time axis.

Features come from `app.features.compute_features` (causal), labels from the model's target (future
bars only). Warm-up rows (features still depending on where the window starts) and rows without a
label are dropped, never filled. Only scale-free features are accepted, so one model can serve symbols
whose prices differ by orders of magnitude (`BaseModel.train_on` feeds price- or volume-unit features in
their scale-free form before it gets here).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from app.core.errors import BadInput, Unavailable
from app.data.frames import OHLCV, index_ms
from app.features import (
    compute_features,
    get_feature,
    is_scale_free,
    market_symbols,
    required_warmup,
    scale_free_form,
)
from app.ml.context import SCALE_WINDOW, context_frame
from app.ml.targets import past_label

if TYPE_CHECKING:
    from app.ml.base import BaseModel

__all__ = ["SCALE_WINDOW", "Dataset", "MarketCandlesMissing", "build_dataset", "check_scale_free",
           "context_frame", "latest_rows", "market_of", "model_market_symbols"]

META_COLUMNS = ["symbol", "ts_ms", "close", "scale", "past_label"]

def check_scale_free(features: list[str]) -> None:
    """Refuse features in price or volume units: a pooled model would learn each symbol's price level."""
    bad = [name for name in features if not is_scale_free(name)]
    if bad:
        hints = "; ".join(f"{name} -> {scale_free_form(name)}" for name in bad)
        raise BadInput(
            f"features {bad} are not scale-free (they are in price or volume units); models take only "
            f"scale-free features. Use instead: {hints}"
        )


class MarketCandlesMissing(Unavailable):
    """A cross-asset model cannot answer: a market symbol it reads has no candle where it is needed (503)."""


def model_market_symbols(model: BaseModel, symbols: Iterable[str]) -> list[str]:
    """The market symbols `model` reads: recorded when it trained, else what its features need of
    `symbols` (the call's)."""
    recorded = getattr(model, "market_symbols_", None)
    if recorded:
        return list(recorded)
    return market_symbols(list(model.features), symbols)


def market_of(model: BaseModel, candles_by_symbol: Mapping[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    needed = model_market_symbols(model, candles_by_symbol)
    missing = [s for s in needed if s not in candles_by_symbol]
    if missing:
        raise BadInput(f"{model.kind} model reads the candles of {needed} (cross-asset features); the "
                       f"candles given lack {missing}")
    return {s: candles_by_symbol[s] for s in needed}


@dataclass(frozen=True)
class Dataset:
    """Rows of every symbol sorted by time; X and meta share a DatetimeIndex of candle open times."""

    X: pd.DataFrame
    y: np.ndarray
    meta: pd.DataFrame

    @property
    def ts_ms(self) -> np.ndarray:
        return self.meta["ts_ms"].to_numpy()

    def subset(self, mask: np.ndarray) -> Dataset:
        return Dataset(self.X[mask], self.y[mask], self.meta[mask])

    def __len__(self) -> int:
        return len(self.y)


def check_candles(symbol: str, candles: pd.DataFrame) -> None:
    missing = [c for c in OHLCV if c not in candles.columns]
    if missing or not isinstance(candles.index, pd.DatetimeIndex):
        raise BadInput(
            f"data for {symbol!r} must be candles: OHLCV columns {OHLCV} on a UTC DatetimeIndex "
            f"(as app.data.candles.load_candles returns); missing {missing or 'the DatetimeIndex'}"
        )


def _whole_label_window(candles: pd.DataFrame, h: int, bar_ms: int) -> np.ndarray:
    """True where the h rows after t are the h bars after t: no candle is missing inside the label window.

    Labels count rows; the embargo counts time. Across a gap (an outage, an empty bin) "h rows later" is
    later than h bars, so such a label could reach past the cut the embargo protects: drop it instead.
    """
    ms = index_ms(candles.index)
    whole = np.zeros(len(ms), dtype=bool)
    if len(ms) > h:
        whole[:-h] = ms[h:] - ms[:-h] == h * bar_ms
    return whole


def build_dataset(
    model: BaseModel, candles_by_symbol: Mapping[str, pd.DataFrame],
    features_by_symbol: Mapping[str, pd.DataFrame] | None = None,
) -> Dataset:
    """Pool every symbol's labelled, warmed-up rows; `meta` keeps each row's symbol and time.

    `features_by_symbol`: the model's features already computed on each symbol's candles (same index; a
    tuning study computes its candidates once for all its trials); computed here when not given."""
    if not candles_by_symbol:
        raise BadInput("no symbols given; pass at least one symbol's candles")
    features = list(model.features)
    check_scale_free(features)
    horizon = int(model.horizon)
    warmup = required_warmup(features, model.timeframe)
    market = market_of(model, candles_by_symbol)
    parts = []
    extra: list[str] = []
    for symbol in sorted(candles_by_symbol):
        candles = candles_by_symbol[symbol]
        check_candles(symbol, candles)
        if features_by_symbol is None:
            frame = compute_features(candles, features, market)
        else:
            frame = features_by_symbol[symbol][features].copy()
            if not frame.index.equals(candles.index):
                raise BadInput(f"the features given for {symbol!r} are not on its candles' index")
        label = model.target(candles).where(_whole_label_window(candles, horizon, model.bar_ms))
        frame["__y"] = label.to_numpy()
        frame = frame.join(context_frame(candles))
        frame["past_label"] = past_label(label, horizon).to_numpy()
        inputs = model.baseline_inputs(candles)
        extra = list(inputs)
        for name, column in inputs.items():
            frame[name] = column.to_numpy()
        frame["symbol"] = symbol
        frame["ts_ms"] = index_ms(candles.index)
        frame = frame.iloc[warmup:]
        parts.append(frame.dropna(subset=[*features, "__y", "scale"]))
    pooled = pd.concat(parts).sort_index(kind="stable")
    if pooled.empty:
        raise BadInput(
            f"no labelled rows: each symbol needs more than {warmup} warm-up + {horizon} horizon "
            f"candles of {model.timeframe}"
        )
    meta = pooled[META_COLUMNS + extra]
    return Dataset(X=pooled[features], y=pooled["__y"].to_numpy(dtype="float64"), meta=meta)


def latest_rows(
    model: BaseModel, candles: pd.DataFrame, market: Mapping[str, pd.DataFrame] | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Features and context of the newest candle, for serving; refuses when the warm-up is not covered.

    A model with cross-asset features reads its recorded market symbols' candles (`market`, same
    timeframe) at the same times, exactly as in training; MarketCandlesMissing (503) names a market
    symbol whose candles are absent where the newest row needs them.
    """
    check_candles("the request", candles)
    warmup = required_warmup(list(model.features), model.timeframe)
    if len(candles) <= warmup:
        raise BadInput(
            f"{len(candles)} candles are not enough for features {model.features}: need more than "
            f"{warmup} (the warm-up) of {model.timeframe}"
        )
    window = candles.iloc[-(warmup + 1):]
    needed = list(getattr(model, "market_symbols_", None) or ())
    given = {s: market[s] for s in needed if market is not None and s in market}
    features = compute_features(window, list(model.features), given if needed else None)
    row = features.iloc[[-1]]
    if needed:
        check_market_row(model, row, window, given, needed)
    return row, context_frame(candles.iloc[-(SCALE_WINDOW + 1):]).iloc[[-1]]


def check_market_row(model: BaseModel, row: pd.DataFrame, window: pd.DataFrame,
                     market: Mapping[str, pd.DataFrame], needed: list[str]) -> None:
    """Refuse (503) a newest row whose cross-asset features are undefined for want of market candles."""
    cross = [f for f in row.columns if get_feature(f).market is not None]
    if not row[cross].isna().to_numpy().any():
        return
    missing = []
    for symbol in needed:
        frame = market.get(symbol)
        absent = window.index if frame is None else window.index.difference(frame.index)
        if len(absent):
            missing.append(f"{symbol} (no candle at {absent[-1].isoformat()}"
                           f"{f' and {len(absent) - 1} earlier' if len(absent) > 1 else ''})")
    if missing:
        raise MarketCandlesMissing(
            f"{model.kind} model reads the candles of {needed} at the same times as the symbol's; missing "
            f"market candles: {'; '.join(missing)}. Ingest them (`mlpipe ingest --symbols "
            f"{','.join(needed)}`) or retry once they arrive"
        )
