"""Missing candles between stored ones: reported to the user, never filled in silently."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from app.data.frames import timeframe_ms


@dataclass(frozen=True)
class Gap:
    start_ts: int  # open time of the first missing candle (ms)
    end_ts: int  # open time of the last missing candle (ms)
    missing_bars: int


def find_gaps(ts_ms: Iterable[int] | np.ndarray, timeframe: str = "1m") -> list[Gap]:
    """Runs of missing candles between consecutive present ones (nothing before the first or after
    the last), so an outage of the source shows up as a gap instead of an invisible jump."""
    step = timeframe_ms(timeframe)
    ts = np.unique(np.asarray(list(ts_ms) if not isinstance(ts_ms, np.ndarray) else ts_ms, dtype=np.int64))
    if len(ts) < 2:
        return []
    diffs = np.diff(ts)
    holes = np.flatnonzero(diffs > step)
    return [
        Gap(start_ts=int(ts[i] + step), end_ts=int(ts[i + 1] - step), missing_bars=int(diffs[i] // step - 1))
        for i in holes
    ]
