"""Candle validation on ingest: each bad row is rejected with one reason, the good rows go on."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from app.core.errors import BadInput
from app.data.frames import OHLCV, timeframe_ms

# In the order they are checked; a row gets the first reason that applies.
REASONS = (
    "nan",
    "non_positive_price",
    "high_below_open_close",
    "low_above_open_close",
    "negative_volume",
    "unaligned_ts",
    "duplicate_ts",
)


@dataclass(frozen=True)
class Rejection:
    ts: int | None
    reason: str
    row: dict[str, Any]


@dataclass
class ValidationResult:
    good: pd.DataFrame  # int-ms `ts` + OHLCV, sorted by ts, one row per ts
    rejected: list[Rejection] = field(default_factory=list)

    def counts_by_reason(self) -> dict[str, int]:
        return dict(Counter(r.reason for r in self.rejected))


def validate_candles(frame: pd.DataFrame, timeframe: str = "1m") -> ValidationResult:
    """Split a batch into storable candles and rejected rows (DESIGN section 2).

    Flat candles with zero volume (trading halts) are valid. Of several rows with the same `ts`, the
    first valid one is kept and the later ones are rejected as `duplicate_ts`.
    """
    missing = [c for c in ("ts", *OHLCV) if c not in frame.columns]
    if missing:
        raise BadInput(f"candles need columns ts, {', '.join(OHLCV)}; missing: {', '.join(missing)}")
    step = timeframe_ms(timeframe)
    ts = _numbers(frame["ts"])
    values = np.column_stack([_numbers(frame[c]) for c in OHLCV])
    o, h, lo, c, v = values.T
    reason = np.full(len(frame), "", dtype=object)

    def mark(mask: np.ndarray, name: str) -> None:
        reason[(reason == "") & mask] = name

    with np.errstate(invalid="ignore"):
        mark(~np.isfinite(ts) | ~np.isfinite(values).all(axis=1), "nan")
        mark((values[:, :4] <= 0).any(axis=1), "non_positive_price")
        mark(h < np.maximum(o, c), "high_below_open_close")
        mark(lo > np.minimum(o, c), "low_above_open_close")
        mark(v < 0, "negative_volume")
        mark(np.fmod(ts, step) != 0, "unaligned_ts")
    ok = reason == ""
    seen = pd.Series(ts).where(ok).duplicated(keep="first").to_numpy() & ok
    mark(seen, "duplicate_ts")

    good_mask = reason == ""
    columns = {name: values[good_mask, i] for i, name in enumerate(OHLCV)}
    good = pd.DataFrame({"ts": ts[good_mask].astype("int64"), **columns})
    good = good.sort_values("ts", kind="stable").reset_index(drop=True)
    bad = np.flatnonzero(~good_mask)
    rejected = [
        Rejection(ts=int(ts[i]) if np.isfinite(ts[i]) else None, reason=str(reason[i]), row=row)
        for i, row in zip(bad, frame.iloc[bad].to_dict(orient="records"), strict=True)
    ]
    return ValidationResult(good=good, rejected=rejected)


def _numbers(column: pd.Series) -> np.ndarray:
    return pd.to_numeric(column, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
