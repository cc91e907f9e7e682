"""Candles in the real store for the seed tests: simulated 1m candles, stored as `mlpipe ingest` would."""

from __future__ import annotations

import pandas as pd

from app.data.candles import store_candles
from app.data.frames import index_ms
from tests.ml.synthetic import make_candles

PRICES = {"BTC-USDT": 30_000.0, "ETH-USDT": 2_000.0, "XRP-USDT": 0.5}


def market(bars: int, seed: int = 40) -> dict[str, pd.DataFrame]:
    return {s: make_candles(bars, seed=seed + i, price=p) for i, (s, p) in enumerate(PRICES.items())}


def store(frames: dict[str, pd.DataFrame], start: int = 0, stop: int | None = None) -> None:
    """Store rows start:stop of each symbol's candles (later slices: time passing, new candles arriving)."""
    for symbol, candles in frames.items():
        part = candles.iloc[start:stop]
        store_candles(symbol, part.reset_index(drop=True).assign(ts=index_ms(part.index)), "simulated")
