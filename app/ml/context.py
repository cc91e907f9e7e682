"""What an answer needs besides the features: the latest close and the current per-bar volatility."""

from __future__ import annotations

import numpy as np
import pandas as pd

SCALE_WINDOW = 60  # bars of past 1-bar log returns behind `scale`, the current volatility per bar


def context_frame(candles: pd.DataFrame) -> pd.DataFrame:
    """Per candle: the close and `scale`, the std of the last SCALE_WINDOW one-bar log returns."""
    close = candles["close"].astype("float64")
    scale = np.log(close).diff().rolling(SCALE_WINDOW, min_periods=SCALE_WINDOW // 3).std()
    return pd.DataFrame({"close": close, "scale": scale}, index=candles.index)
