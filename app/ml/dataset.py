"""(X, y, meta) for one model from candles of several symbols, pooled on one time axis.

Features come from `app.features.compute_features` (causal), labels from the model's target (future
bars only). Warm-up rows (features still depending on where the window starts) and rows without a
label are dropped, never filled. Only scale-free features are accepted, so one model can serve symbols
whose prices differ by orders of magnitude (`BaseModel.train_on` feeds price- or volume-unit features in
their scale-free form before it gets here).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from app.core.errors import BadInput
from app.data.frames import OHLCV, index_ms
from app.features import compute_features, is_scale_free, required_warmup, scale_free_form
from app.ml.context import SCALE_WINDOW, context_frame
from app.ml.targets import past_label

if TYPE_CHECKING:
    from app.ml.base import BaseModel

__all__ = ["SCALE_WINDOW", "Dataset", "build_dataset", "check_scale_free", "context_frame", "latest_rows"]

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
    parts = []
    extra: list[str] = []
    for symbol in sorted(candles_by_symbol):
        candles = candles_by_symbol[symbol]
        check_candles(symbol, candles)
        if features_by_symbol is None:
            frame = compute_features(candles, features)
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


def latest_rows(model: BaseModel, candles: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Features and context of the newest candle, for serving; refuses when the warm-up is not covered."""
    check_candles("the request", candles)
    warmup = required_warmup(list(model.features), model.timeframe)
    if len(candles) <= warmup:
        raise BadInput(
            f"{len(candles)} candles are not enough for features {model.features}: need more than "
            f"{warmup} (the warm-up) of {model.timeframe}"
        )
    features = compute_features(candles.iloc[-(warmup + 1):], list(model.features))
    return features.iloc[[-1]], context_frame(candles.iloc[-(SCALE_WINDOW + 1):]).iloc[[-1]]
