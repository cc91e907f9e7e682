"""Pure candle frames: the OHLCV columns, timeframe lengths, and the canonical UTC-indexed frame.

No storage here (that is `app.data.candles`), so `app.features` and `app.ml` can use it without a database.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from app.core.errors import BadInput

OHLCV = ["open", "high", "low", "close", "volume"]
TIMEFRAME_MS = {"1m": 60_000, "5m": 300_000, "15m": 900_000, "1h": 3_600_000, "4h": 14_400_000}
MINUTE_MS = TIMEFRAME_MS["1m"]
HOUR_MS = 3_600_000
DAY_MS = 86_400_000


def timeframe_ms(timeframe: str) -> int:
    """Milliseconds of one bar; the one place an unknown timeframe is refused."""
    try:
        return TIMEFRAME_MS[timeframe]
    except (KeyError, TypeError):
        raise BadInput(f"unknown timeframe {timeframe!r}; known: {', '.join(TIMEFRAME_MS)}") from None


def bars_per_day(timeframe: str) -> int:
    return max(1, DAY_MS // timeframe_ms(timeframe))


def candles_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Turn rows with an int-ms `ts` column into the canonical UTC-indexed float OHLCV frame."""
    index = pd.DatetimeIndex(
        pd.to_datetime(frame["ts"].astype("int64"), unit="ms", utc=True), name="ts"
    ).as_unit("ms")
    return pd.DataFrame({c: frame[c].astype("float64").to_numpy() for c in OHLCV}, index=index)


def index_ms(index: pd.DatetimeIndex) -> np.ndarray:
    """Candle times as int64 UTC milliseconds, whatever the index's resolution."""
    return index.as_unit("ms").asi8


def iso(ms: int) -> str:
    """A UTC millisecond time as ISO-8601 (`2021-04-05T00:00:00+00:00`)."""
    return pd.Timestamp(int(ms), unit="ms", tz="UTC").isoformat()
