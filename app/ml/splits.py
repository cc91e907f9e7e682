"""Chronological train/holdout split by time across all symbols, with a purged embargo (DESIGN 5).

A row at time t carries a label built from bars t+1..t+h. A train row is kept only when its whole label
window ends before the first holdout bar, so no train label reaches into the holdout: the `embargo` bars
just before the cut are purged. The same rule carves the calibration slice off the end of the train part.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from app.core.errors import BadInput


@dataclass(frozen=True)
class Split:
    """Boolean row masks over the dataset, plus where the cut fell."""

    train: np.ndarray
    holdout: np.ndarray
    cut_ms: int
    embargo_bars: int
    bar_ms: int

    @property
    def purged(self) -> np.ndarray:
        return ~(self.train | self.holdout)


def chronological_split(
    ts_ms: np.ndarray,
    horizon: int,
    bar_ms: int,
    train_ratio: float = 0.8,
    embargo_bars: int | None = None,
) -> Split:
    """Cut the time span [first, last] at `train_ratio`; rows at or after the cut are the holdout.

    The cut is a time, not a row count, so every symbol is split at the same instant and no symbol's
    future informs another's past. `embargo_bars` defaults to (and is never below) the horizon.
    """
    if not 0.0 < train_ratio < 1.0:
        raise BadInput(f"train_ratio must be between 0 and 1 (exclusive), got {train_ratio}")
    ts = np.asarray(ts_ms, dtype="int64")
    if ts.size == 0:
        raise BadInput("no labelled rows to split; load a longer window of candles")
    embargo = max(int(horizon), int(embargo_bars or 0))
    first, last = int(ts.min()), int(ts.max())
    cut = first + math.ceil(train_ratio * (last - first) / bar_ms) * bar_ms
    holdout = ts >= cut
    train = ts + embargo * bar_ms < cut
    if not train.any() or not holdout.any():
        span_bars = (last - first) // bar_ms + 1
        raise BadInput(
            f"window of {span_bars} bars is too short to split at {train_ratio:.0%} with an embargo of "
            f"{embargo} bars; load more candles (at least ~{int(5 * embargo / (1 - train_ratio))} bars)"
        )
    return Split(train=train, holdout=holdout, cut_ms=cut, embargo_bars=embargo, bar_ms=bar_ms)


def calibration_split(ts_ms: np.ndarray, horizon: int, bar_ms: int, calibration_ratio: float = 0.2) -> Split:
    """Carve the calibration slice off the end of the train part (its `holdout` mask), embargoed alike."""
    return chronological_split(ts_ms, horizon, bar_ms, train_ratio=1.0 - calibration_ratio)


def forward_blocks(
    ts_ms: np.ndarray, horizon: int, bar_ms: int, folds: int, min_train_rows: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train, block) masks of `folds` forward folds inside `ts_ms`: the time range is cut into folds + 1
    equal spans; fold k trains on the rows before span k + 1 (embargoed by `horizon` bars) and predicts
    that span (the last fold: everything after its cut). Folds with fewer than `min_train_rows` train
    rows, or none to predict, are left out. What a model fits out of fold inside its own fit rows."""
    first, last = int(ts_ms.min()), int(ts_ms.max())
    edges = [first + (last - first) * k // (folds + 1) for k in range(1, folds + 2)]
    out = []
    for k in range(folds):
        try:
            split = chronological_split(ts_ms, horizon, bar_ms, (edges[k] - first) / max(last - first, 1))
        except BadInput:
            continue  # too few rows before this edge
        block = split.holdout & (ts_ms < edges[k + 1] if k + 1 < folds else True)
        if split.train.sum() >= min_train_rows and block.any():
            out.append((split.train, block))
    return out
